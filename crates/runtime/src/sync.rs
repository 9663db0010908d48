//! The channel between the runtime and a process it is setting up.
//!
//! A `SOCK_SEQPACKET` socket pair keeps message boundaries, carries file
//! descriptors (`SCM_RIGHTS`) and reports the death of the other side as
//! end-of-file, so a child that dies half-way is noticed at once.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

/// Largest message; real ones are small JSON documents.
const MAX_MESSAGE: usize = 64 * 1024;

/// One end of a sync channel.
#[derive(Debug)]
pub struct Channel {
    fd: OwnedFd,
}

/// A message from a process being set up to the runtime.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ToRuntime {
    /// The helper process created a user namespace: write its id mappings,
    /// then answer [`ToChild::Continue`].
    MapIds,
    /// The helper started the container's init; a pidfd for it follows.
    InitPid,
    /// The mounts are in place: run the prestart and createRuntime hooks,
    /// then answer [`ToChild::Continue`].
    RunHooks,
    /// A pty master follows as an fd (foreground `run` with a terminal).
    Console,
    /// A seccomp notification fd follows.
    SeccompListener,
    /// Set-up is complete; the process waits to be started.
    Ready,
    /// Set-up failed.
    Error {
        /// What went wrong, one line.
        message: String,
    },
}

/// A message from the runtime to a process being set up.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ToChild {
    /// Go on with the next step.
    Continue {
        /// The state document hooks and the seccomp listener receive
        /// (compact JSON), when the runtime knows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<String>,
        /// The container process state for a seccomp listener.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seccomp_state: Option<String>,
    },
    /// A mount the runtime prepared for `mounts[index]` (an idmapped bind
    /// mount, which only the host's root can make) follows as an fd.
    MountFd {
        /// The index in `mounts`.
        index: usize,
    },
    /// Stop: the runtime failed.
    Abort,
}

/// The request a `start` sends to a created container's init.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StartRequest {
    /// Run the startContainer hooks and execute the program.
    Start {
        /// The state document for the startContainer hooks.
        state: String,
    },
}

/// What init answers a start request.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StartReply {
    /// About to execute the program; end-of-file follows on success.
    Executing,
    /// The start failed.
    Error {
        /// What went wrong.
        message: String,
    },
}

impl Channel {
    /// A connected pair (both ends close-on-exec).
    pub fn pair() -> io::Result<(Channel, Channel)> {
        let (a, b) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )?;
        Ok((Channel { fd: a }, Channel { fd: b }))
    }

    /// Wraps a connected `SOCK_SEQPACKET` socket.
    pub fn from_fd(fd: OwnedFd) -> Self {
        Channel { fd }
    }

    /// Sends a message, with an fd attached if given.
    pub fn send<T: Serialize>(&self, message: &T, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let bytes = serde_json::to_vec(message).map_err(io::Error::other)?;
        let iov = [io::IoSlice::new(&bytes)];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = SendAncillaryBuffer::new(&mut space);
        let fds;
        if let Some(fd) = fd {
            fds = [fd];
            control.push(SendAncillaryMessage::ScmRights(&fds));
        }
        rustix::net::sendmsg(&self.fd, &iov, &mut control, SendFlags::NOSIGNAL)?;
        Ok(())
    }

    /// Receives a message and the fd attached to it, if any; `Ok(None)` at
    /// end-of-file (the other side is gone).
    pub fn recv<T: DeserializeOwned>(&self) -> io::Result<Option<(T, Option<OwnedFd>)>> {
        let mut buf = vec![0u8; MAX_MESSAGE];
        let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let msg = loop {
            let mut iov = [io::IoSliceMut::new(&mut buf)];
            match rustix::net::recvmsg(&self.fd, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC) {
                Ok(msg) => break msg,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let mut received = None;
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(fds) = message {
                for fd in fds {
                    received.get_or_insert(fd);
                }
            }
        }
        if msg.bytes == 0 {
            return Ok(None);
        }
        let value = serde_json::from_slice(&buf[..msg.bytes])
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok(Some((value, received)))
    }
}

impl AsFd for Channel {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_fds_cross() {
        let (a, b) = Channel::pair().unwrap();
        a.send(&ToRuntime::MapIds, None).unwrap();
        let file = std::fs::File::open("/dev/null").unwrap();
        a.send(&ToRuntime::Console, Some(file.as_fd())).unwrap();
        let (m, fd) = b.recv::<ToRuntime>().unwrap().unwrap();
        assert_eq!(m, ToRuntime::MapIds);
        assert!(fd.is_none());
        let (m, fd) = b.recv::<ToRuntime>().unwrap().unwrap();
        assert_eq!(m, ToRuntime::Console);
        assert!(fd.is_some());
        drop(a);
        assert!(b.recv::<ToRuntime>().unwrap().is_none());
    }
}
