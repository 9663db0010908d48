//! A minimal init for `run --init`: PID 1 of the container that starts the
//! real program as its child, forwards every signal it gets to it, reaps
//! every orphan, and exits with the program's exit status (128+N for a
//! signal N), as Docker's `docker-init` does.

use std::ffi::CString;
use std::os::fd::AsFd;

use crate::sys;

/// Runs `args` (resolved through `$PATH`) under the init; returns the exit
/// code to end with.
pub fn run(args: &[String]) -> i32 {
    let Some(program) = args.first() else {
        eprintln!("hafen-init: no program given");
        return 127;
    };
    let signals = match crate::container::take_signals() {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("hafen-init: {e}");
            return 125;
        }
    };
    let argv: Vec<CString> = match args.iter().map(|a| CString::new(a.as_bytes())).collect() {
        Ok(v) => v,
        Err(_) => {
            eprintln!("hafen-init: an argument contains a NUL byte");
            return 125;
        }
    };
    let path = resolve(program);
    // SAFETY: the init is single-threaded; the child only resets its signal
    // mask and executes.
    let child = match unsafe { sys::clone3(0, libc::SIGCHLD as u64, None) } {
        Ok(sys::Forked::Child) => {
            let _ = sys::set_signal_mask(libc::SIG_SETMASK, &[]);
            let _ = sys::reset_signals();
            let argv: Vec<&std::ffi::CStr> = argv.iter().map(AsRef::as_ref).collect();
            let env: Vec<CString> = std::env::vars_os()
                .filter_map(|(k, v)| {
                    let mut kv = k.into_encoded_bytes();
                    kv.push(b'=');
                    kv.extend(v.into_encoded_bytes());
                    CString::new(kv).ok()
                })
                .collect();
            let envp: Vec<&std::ffi::CStr> = env.iter().map(AsRef::as_ref).collect();
            let err = sys::execve(&path, &argv, &envp);
            eprintln!("hafen-init: cannot run {program}: {err}");
            let code = if err.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            };
            sys::exit_now(code)
        }
        Ok(sys::Forked::Parent { pid, .. }) => pid,
        Err(e) => {
            eprintln!("hafen-init: cannot start {program}: {e}");
            return 125;
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

/// The program's path: as given when it has a `/`, else the first match
/// in `$PATH`.
fn resolve(program: &str) -> CString {
    let found = (!program.contains('/'))
        .then(|| {
            std::env::var("PATH")
                .unwrap_or_else(|_| {
                    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
                })
                .split(':')
                .map(|dir| format!("{dir}/{program}"))
                .find(|p| {
                    std::fs::metadata(p).is_ok_and(|m| {
                        use std::os::unix::fs::PermissionsExt;
                        m.is_file() && m.permissions().mode() & 0o111 != 0
                    })
                })
        })
        .flatten()
        .unwrap_or_else(|| program.to_string());
    CString::new(found).unwrap_or_default()
}
