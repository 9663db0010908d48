//! A minimal init for `run --init`: PID 1 of the container that starts the
//! real program as its child, forwards every signal it gets to it, reaps
//! every orphan, and exits with the program's exit status (128+N for a
//! signal N), as Docker's `docker-init` does.

use std::os::fd::AsFd;

use crate::sys;

/// Runs `args` (resolved through `$PATH`) under the init; returns the exit
/// code to end with.
pub fn run(args: &[String]) -> i32 {
    let Some(program) = args.first() else {
        eprintln!("hafen-init: no program given");
        return 127;
    };
    sys::catch_all_signals();
    let signals = match crate::container::take_signals() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("hafen-init: {e}");
            return 125;
        }
    };
    // std's spawn uses fork or vfork (not clone3, which Docker's seccomp
    // profile turns into ENOSYS); the child gets an empty signal mask back
    // (exec resets the handlers).
    let mut command = std::process::Command::new(program);
    command.args(&args[1..]);
    // SAFETY: the closure runs in the forked child before exec and only
    // calls sigprocmask, which is async-signal-safe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(&mut command, || {
            sys::set_signal_mask(libc::SIG_SETMASK, &[])
        });
    }
    let child = match command.spawn() {
        Ok(c) => c.id() as i32,
        Err(e) => {
            eprintln!("hafen-init: cannot run {program}: {e}");
            return if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
        }
    };
    loop {
        let signal = match sys::read_signalfd(signals.as_fd()) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("hafen-init: {e}");
                return 125;
            }
        };
        if signal != libc::SIGCHLD {
            let _ = sys::kill(child, signal);
            continue;
        }
        let mut code = None;
        while let Ok(Some((pid, status))) =
            rustix::process::wait(rustix::process::WaitOptions::NOHANG)
        {
            if pid.as_raw_nonzero().get() == child {
                code = status
                    .exit_status()
                    .or_else(|| status.terminating_signal().map(|s| 128 + s));
            }
        }
        if let Some(code) = code {
            return code;
        }
    }
}
