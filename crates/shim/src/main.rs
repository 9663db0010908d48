//! The `hafen-shim` binary: the per-container supervisor (its config comes
//! as JSON on stdin, see `hafen_shim::protocol`), and, invoked as
//! `hafen-init` (bind-mounted into a container for `run --init`), the
//! container's minimal init.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::ExitCode;

fn code(c: i32) -> ExitCode {
    ExitCode::from(u8::try_from(c).unwrap_or(255))
}

fn main() -> ExitCode {
    let mut args = std::env::args();
    let argv0 = args.next().unwrap_or_default();
    if argv0.ends_with("hafen-init") {
        let rest: Vec<String> = args.skip_while(|a| a == "--").collect();
        return code(hafen_runtime::tiny_init::run(&rest));
    }
    // Started from a protected fd (`/proc/self/fd/N`): the name `ps` shows.
    let _ = rustix::thread::set_name(c"hafen-shim");
    if let (Some(flag), Some(json)) = (args.next(), args.next()) {
        if flag == hafen_shim::server::SERVE_ARG {
            return code(hafen_shim::server::serve_handed_over(&json));
        }
    }
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut input) {
        eprintln!("hafen-shim: cannot read the configuration: {e}");
        return ExitCode::from(2);
    }
    let config: hafen_shim::protocol::ShimConfig = match serde_json::from_slice(&input) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hafen-shim: bad configuration: {e}");
            return ExitCode::from(2);
        }
    };
    // The first line goes to the daemon through stdout; the shim's own
    // stdio becomes /dev/null (the runtime hands it to the processes).
    let ready: OwnedFd = match rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdout(), 3) {
        Ok(fd) => fd,
        Err(e) => {
            eprintln!("hafen-shim: {e}");
            return ExitCode::from(2);
        }
    };
    code(hafen_shim::server::run(config, std::fs::File::from(ready)))
}
