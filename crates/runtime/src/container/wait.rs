//! Waiting for a container's process in the foreground (`run`, `exec`
//! without `--detach`): signals to the runtime go to the process, its
//! terminal (if any) is relayed to the caller's, orphans are reaped, and the
//! exit status comes back as a shell would report it (128+N for signal N).

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::event::{PollFd, PollFlags, Timespec};

use crate::console::{RawMode, caller_tty, copy_winsize};
use crate::{Result, io_err, sys};

/// Blocks every signal and returns a signalfd for them: call before the
/// container's process is forked, so no signal is lost or acted on.
pub fn take_signals() -> Result<OwnedFd> {
    sys::set_signal_mask(libc::SIG_BLOCK, &[]).map_err(io_err("cannot block signals"))?;
    let all: Vec<i32> = (1..=libc::SIGRTMAX())
        .filter(|&s| s != libc::SIGKILL && s != libc::SIGSTOP)
        .collect();
    sys::signalfd(&all).map_err(io_err("cannot create a signalfd"))
}

/// What the foreground wait relays.
#[derive(Debug)]
pub struct ForegroundIo {
    /// The terminal master of the process, if it has a terminal.
    pub console: Option<OwnedFd>,
    /// The signalfd from [`take_signals`].
    pub signals: OwnedFd,
}

fn exit_code(status: rustix::process::WaitStatus) -> Option<i32> {
    if let Some(code) = status.exit_status() {
        Some(code)
    } else {
        status.terminating_signal().map(|s| 128 + s)
    }
}

/// Waits for `pid` (a child of the caller) to end; returns its exit code.
pub fn wait_foreground(pid: i32, pidfd: &OwnedFd, io: ForegroundIo) -> Result<i32> {
    let tty = caller_tty();
    let _raw = match (&io.console, tty) {
        (Some(master), Some(tty)) => {
            copy_winsize(tty, master.as_fd());
            RawMode::enable(tty).ok()
        }
        _ => None,
    };
    let stdin = rustix::stdio::stdin();
    let mut stdin_open = io.console.is_some();
    let mut master_open = io.console.is_some();
    let mut exit: Option<i32> = None;
    let mut buf = vec![0u8; 32 * 1024];
    let mut stdout = std::io::stdout().lock();
    loop {
        if exit.is_some() && !master_open {
            break;
        }
        let mut fds: Vec<PollFd<'_>> = vec![PollFd::new(&io.signals, PollFlags::IN)];
        let (mut stdin_at, mut master_at) = (None, None);
        if stdin_open {
            stdin_at = Some(fds.len());
            fds.push(PollFd::from_borrowed_fd(stdin, PollFlags::IN));
        }
        if let (true, Some(master)) = (master_open, &io.console) {
            master_at = Some(fds.len());
            fds.push(PollFd::new(master, PollFlags::IN));
        }
        // Once the process is gone, give its terminal a moment to drain.
        let timeout = exit.map(|_| Timespec {
            tv_sec: 0,
            tv_nsec: 100_000_000,
        });
        let n = match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(n) => n,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(io_err("poll")(e.into())),
        };
        if n == 0 && exit.is_some() {
            break;
        }
        let ready = |at: Option<usize>| at.is_some_and(|i| !fds[i].revents().is_empty());
        let (sig_ready, in_ready, master_ready) = (
            !fds[0].revents().is_empty(),
            ready(stdin_at),
            ready(master_at),
        );
        drop(fds);
        if sig_ready {
            let signal = sys::read_signalfd(io.signals.as_fd()).map_err(io_err("signalfd"))?;
            match signal {
                libc::SIGCHLD => {
                    while let Ok(Some((child, status))) =
                        rustix::process::wait(rustix::process::WaitOptions::NOHANG)
                    {
                        if child.as_raw_nonzero().get() == pid {
                            exit = exit_code(status);
                        }
                    }
                }
                libc::SIGWINCH => {
                    if let (Some(tty), Some(master)) = (tty, &io.console) {
                        copy_winsize(tty, master.as_fd());
                    }
                }
                other => {
                    let _ = sys::pidfd_send_signal(pidfd.as_fd(), other);
                }
            }
        }
        if in_ready {
            match rustix::io::read(stdin, &mut buf) {
                Ok(0) | Err(_) => stdin_open = false,
                Ok(n) => {
                    if let Some(master) = &io.console {
                        if write_all(master.as_fd(), &buf[..n]).is_err() {
                            stdin_open = false;
                        }
                    }
                }
            }
        }
        if master_ready {
            if let Some(master) = &io.console {
                match rustix::io::read(master, &mut buf) {
                    Ok(0) | Err(_) => master_open = false,
                    Ok(n) => {
                        let _ = stdout.write_all(&buf[..n]);
                        let _ = stdout.flush();
                    }
                }
            }
        }
    }
    Ok(exit.unwrap_or(255))
}

fn write_all(fd: BorrowedFd<'_>, mut data: &[u8]) -> std::io::Result<()> {
    while !data.is_empty() {
        match rustix::io::write(fd, data) {
            Ok(n) => data = &data[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
