//! Hooks: programs the configuration asks to run at points of the
//! lifecycle, each given the container's state as JSON on stdin.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hafen_oci::runtime::{Hook, Hooks};
use rustix::event::{PollFd, PollFlags};

/// The lifecycle points, in the specification's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// Deprecated; runs just before createRuntime.
    Prestart,
    /// After the environment is created, in the runtime's namespaces.
    CreateRuntime,
    /// After the environment is created, in the container's namespaces,
    /// before pivot_root.
    CreateContainer,
    /// During start, in the container, before the program runs.
    StartContainer,
    /// After the program started.
    Poststart,
    /// After the container is deleted.
    Poststop,
}

impl HookKind {
    /// The specification's name.
    pub fn name(self) -> &'static str {
        match self {
            HookKind::Prestart => "prestart",
            HookKind::CreateRuntime => "createRuntime",
            HookKind::CreateContainer => "createContainer",
            HookKind::StartContainer => "startContainer",
            HookKind::Poststart => "poststart",
            HookKind::Poststop => "poststop",
        }
    }

    /// The hooks of this kind in a configuration.
    pub fn of(self, hooks: Option<&Hooks>) -> &[Hook] {
        let Some(hooks) = hooks else { return &[] };
        let list = match self {
            HookKind::Prestart => hooks.prestart(),
            HookKind::CreateRuntime => hooks.create_runtime(),
            HookKind::CreateContainer => hooks.create_container(),
            HookKind::StartContainer => hooks.start_container(),
            HookKind::Poststart => hooks.poststart(),
            HookKind::Poststop => hooks.poststop(),
        };
        list.as_deref().unwrap_or(&[])
    }
}

/// A hook failed.
#[derive(Debug, thiserror::Error)]
#[error("error running {kind} hook #{index} ({path}): {reason}{output}", path = path.display())]
pub struct HookError {
    /// The lifecycle point.
    pub kind: &'static str,
    /// The hook's position in its list.
    pub index: usize,
    /// The hook's program.
    pub path: PathBuf,
    /// What happened.
    pub reason: String,
    /// `, stdout: ..., stderr: ...` when the hook printed something.
    pub output: String,
}

/// Runs the hooks of one kind in order; the first failure stops the rest.
/// `cwd` is the working directory for the hooks (runc uses the bundle for
/// runtime hooks and the root filesystem for createContainer).
pub fn run(
    kind: HookKind,
    hooks: &[Hook],
    state: &str,
    cwd: Option<&Path>,
) -> Result<(), HookError> {
    for (index, hook) in hooks.iter().enumerate() {
        run_one(hook, state, cwd).map_err(|(reason, output)| HookError {
            kind: kind.name(),
            index,
            path: hook.path().clone(),
            reason,
            output,
        })?;
    }
    Ok(())
}

/// Runs one hook: `(reason, output)` on failure.
fn run_one(hook: &Hook, state: &str, cwd: Option<&Path>) -> Result<(), (String, String)> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args().as_deref() {
        if let Some((first, rest)) = args.split_first() {
            cmd.arg0(first).args(rest);
        }
    }
    if let Some(env) = hook.env().as_deref() {
        cmd.env_clear();
        for entry in env {
            let (key, value) = entry.split_once('=').unwrap_or((entry, ""));
            cmd.env(key, value);
        }
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| (e.to_string(), String::new()))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin is fine.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = hook
        .timeout()
        .filter(|&t| t > 0)
        .map(|t| (Instant::now() + Duration::from_secs(t as u64), t));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut stdout = child
        .stdout
        .take()
        .map(|p| std::fs::File::from(std::os::fd::OwnedFd::from(p)));
    let mut stderr = child
        .stderr
        .take()
        .map(|p| std::fs::File::from(std::os::fd::OwnedFd::from(p)));
    let mut timed_out = None;
    while stdout.is_some() || stderr.is_some() {
        let timeout = match deadline {
            Some((when, secs)) => {
                let left = when.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    timed_out = Some(secs);
                    break;
                }
                Some(rustix::event::Timespec::try_from(left).unwrap_or_default())
            }
            None => None,
        };
        let mut fds = Vec::with_capacity(2);
        if let Some(o) = &stdout {
            fds.push(PollFd::new(o, PollFlags::IN));
        }
        if let Some(e) = &stderr {
            fds.push(PollFd::new(e, PollFlags::IN));
        }
        match rustix::event::poll(&mut fds, timeout.as_ref()) {
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err((format!("poll: {e}"), String::new())),
        }
        let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
        drop(fds);
        let mut i = 0;
        for (pipe, buf) in [(&mut stdout, &mut out), (&mut stderr, &mut err)] {
            if pipe.is_none() {
                continue;
            }
            if ready[i] {
                let mut chunk = [0u8; 4096];
                let n = pipe
                    .as_mut()
                    .map_or(Ok(0), |p| p.read(&mut chunk))
                    .unwrap_or(0);
                if n == 0 {
                    *pipe = None;
                } else if buf.len() < 64 * 1024 {
                    buf.extend_from_slice(&chunk[..n]);
                }
            }
            i += 1;
        }
    }
    if timed_out.is_none() {
        if let Some((when, secs)) = deadline {
            // Output closed; the process may still run: wait for it with the
            // same deadline.
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() >= when {
                    timed_out = Some(secs);
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    let output = |out: &[u8], err: &[u8]| {
        if out.is_empty() && err.is_empty() {
            String::new()
        } else {
            format!(
                ", stdout: {}, stderr: {}",
                String::from_utf8_lossy(out).trim(),
                String::from_utf8_lossy(err).trim()
            )
        }
    };
    if let Some(secs) = timed_out {
        let _ = child.kill();
        let _ = child.wait();
        return Err((
            format!("hook ran past specified timeout of {secs}s"),
            output(&out, &err),
        ));
    }
    let status = child
        .wait()
        .map_err(|e| (e.to_string(), output(&out, &err)))?;
    if status.success() {
        Ok(())
    } else {
        Err((status.to_string(), output(&out, &err)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn state_reaches_stdin_and_args_and_env_apply() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {} && echo $X >> {}"],"env":["X=hello"]}}"#,
            out.display(),
            out.display()
        ));
        run(HookKind::Prestart, &[h], r#"{"id":"c"}"#, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"c\"}hello\n"
        );
    }

    #[test]
    fn failure_names_the_hook_and_its_output() {
        let h = hook(r#"{"path":"/bin/sh","args":["sh","-c","echo oops >&2; exit 3"]}"#);
        let err = run(HookKind::CreateRuntime, &[h], "{}", None).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("createRuntime hook #0"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        assert!(text.contains("oops"), "{text}");
    }

    #[test]
    fn timeout_kills_the_hook() {
        let h = hook(r#"{"path":"/bin/sleep","args":["sleep","30"],"timeout":1}"#);
        let start = Instant::now();
        let err = run(HookKind::Poststart, &[h], "{}", None).unwrap_err();
        assert!(err.to_string().contains("timeout of 1s"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn missing_program_is_an_error() {
        let h = hook(r#"{"path":"/nonexistent/hook"}"#);
        assert!(run(HookKind::Poststop, &[h], "{}", None).is_err());
    }
}
