//! Terminals: the pseudo-terminal a container with `process.terminal` gets,
//! and handing its master side to whoever drives it (a console socket, as
//! runc's protocol has it, or `run` in the foreground).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};
use rustix::termios::Winsize;

/// A pseudo-terminal pair.
#[derive(Debug)]
pub struct Pty {
    /// The master side (kept by the driver).
    pub master: OwnedFd,
    /// The slave side (the container's stdio).
    pub slave: OwnedFd,
    /// The slave's path (`/dev/pts/N`).
    pub slave_path: PathBuf,
}

/// Opens a new pty from `/dev/ptmx` of the current mount namespace (inside
/// the container, so that it belongs to the container's devpts instance).
pub fn open_pty(size: Option<(u16, u16)>) -> io::Result<Pty> {
    let master = rustix::fs::open(
        "/dev/ptmx",
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    rustix::pty::unlockpt(&master)?;
    let name = rustix::pty::ptsname(&master, Vec::new())?;
    let slave_path = PathBuf::from(std::ffi::OsStr::from_bytes(name.as_bytes()));
    let slave = rustix::fs::open(
        &slave_path,
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    if let Some((rows, cols)) = size {
        rustix::termios::tcsetwinsize(
            &master,
            Winsize {
                ws_row: rows,
                ws_col: cols,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )?;
    }
    Ok(Pty {
        master,
        slave,
        slave_path,
    })
}

/// Sends the master over a console socket exactly as runc does: one message
/// whose data is the name `/dev/ptmx` and which carries one fd.
pub fn send_master(socket: BorrowedFd<'_>, master: BorrowedFd<'_>) -> io::Result<()> {
    send_fd_with(socket, master, b"/dev/ptmx")
}

/// Sends one fd with `data` in one message.
pub fn send_fd_with(socket: BorrowedFd<'_>, fd: BorrowedFd<'_>, data: &[u8]) -> io::Result<()> {
    let iov = [io::IoSlice::new(data)];
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [fd];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(socket, &iov, &mut control, SendFlags::NOSIGNAL)?;
    Ok(())
}

/// Connects to a console socket (a `SOCK_STREAM` unix socket).
pub fn connect_socket(path: &Path) -> io::Result<OwnedFd> {
    let fd = rustix::net::socket_with(
        rustix::net::AddressFamily::UNIX,
        rustix::net::SocketType::STREAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    let addr = crate::unix_addr::address_for(path)?;
    rustix::net::connect(&fd, &addr.addr)?;
    Ok(fd)
}

/// Makes `slave` the calling process's stdio and controlling terminal. The
/// caller must be a session leader.
pub fn become_console(slave: &OwnedFd) -> io::Result<()> {
    rustix::stdio::dup2_stdin(slave)?;
    rustix::stdio::dup2_stdout(slave)?;
    rustix::stdio::dup2_stderr(slave)?;
    rustix::process::ioctl_tiocsctty(slave.as_fd())?;
    Ok(())
}

/// The terminal of the caller (the first of stdin, stdout, stderr that is one).
pub fn caller_tty() -> Option<BorrowedFd<'static>> {
    [
        rustix::stdio::stdin(),
        rustix::stdio::stdout(),
        rustix::stdio::stderr(),
    ]
    .into_iter()
    .find(|fd| rustix::termios::isatty(fd))
}

/// Copies the window size of `from` to `to`.
pub fn copy_winsize(from: BorrowedFd<'_>, to: BorrowedFd<'_>) {
    if let Ok(size) = rustix::termios::tcgetwinsize(from) {
        let _ = rustix::termios::tcsetwinsize(to, size);
    }
}

/// Puts a terminal into raw mode and restores it when dropped.
#[derive(Debug)]
pub struct RawMode {
    fd: BorrowedFd<'static>,
    saved: rustix::termios::Termios,
}

impl RawMode {
    /// Switches `fd` to raw mode.
    pub fn enable(fd: BorrowedFd<'static>) -> io::Result<Self> {
        let saved = rustix::termios::tcgetattr(fd)?;
        let mut raw = saved.clone();
        raw.make_raw();
        rustix::termios::tcsetattr(fd, rustix::termios::OptionalActions::Now, &raw)?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ =
            rustix::termios::tcsetattr(self.fd, rustix::termios::OptionalActions::Now, &self.saved);
    }
}

impl AsFd for Pty {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.master.as_fd()
    }
}
