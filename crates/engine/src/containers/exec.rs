//! Execs (`docker exec`) and attaching: requests to the container's shim.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hafen_api::models::ExecConfig;
use hafen_shim::protocol::{self, ExitStatus, Reply, Request};
use serde_json::json;

use super::record::Status;
use super::{ContainerError, Ctr, Exec, lock, new_id, spec};
use crate::Engine;

type Result<T, E = ContainerError> = std::result::Result<T, E>;

impl Engine {
    /// `exec create`: checks the container runs and remembers the exec.
    pub fn exec_create(&self, key: &str, config: ExecConfig) -> Result<String> {
        let ctr = self.containers.find(key)?;
        let r = ctr.rec();
        check_running(&r)?;
        if config.cmd.as_ref().is_none_or(Vec::is_empty) {
            return Err(ContainerError::Invalid("No exec command specified".into()));
        }
        let id = new_id();
        let exec = Arc::new(Exec {
            id: id.clone(),
            container: r.id.clone(),
            config,
            pid: Mutex::new(0),
            state_dir: ctr.paths.state.clone(),
        });
        let name = r.name.clone();
        let container = r.id.clone();
        let image = r.config.image.clone();
        drop(r);
        lock(&self.containers.execs).insert(id.clone(), exec.clone());
        let cmd = exec.config.cmd.clone().unwrap_or_default().join(" ");
        self.container_event(
            &container,
            &format!("exec_create: {cmd}"),
            &[("execID", &id), ("image", &image), ("name", &name)],
        );
        Ok(id)
    }

    /// The OCI process of an exec.
    fn exec_process(&self, ctr: &Ctr, config: &ExecConfig, tty: bool) -> Result<serde_json::Value> {
        let r = ctr.rec();
        let user = if config.user.is_empty() {
            r.config.user.clone()
        } else {
            config.user.clone()
        };
        // A running container's files, as it sees them.
        let root = std::path::PathBuf::from(format!("/proc/{}/root", r.state.pid));
        let (uid, gid, extra) = spec::resolve_user(&root, &user)?;
        let mut env = spec::environment(&r.config);
        env.extend(config.env.iter().cloned());
        let caps = if config.privileged {
            hafen_runtime::profiles::own_capabilities()
        } else {
            spec::capabilities(&r.host_config)?
        };
        let cwd = if !config.working_dir.is_empty() {
            config.working_dir.clone()
        } else if r.config.working_dir.is_empty() {
            "/".into()
        } else {
            r.config.working_dir.clone()
        };
        let no_new_privs = r.host_config.security_opt.iter().flatten().any(|o| {
            o == "no-new-privileges"
                || o == "no-new-privileges:true"
                || o == "no-new-privileges=true"
        });
        Ok(json!({
            "terminal": tty,
            "user": {"uid": uid, "gid": gid, "additionalGids": extra},
            "args": config.cmd.clone().unwrap_or_default(),
            "env": env,
            "cwd": cwd,
            "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
            "noNewPrivileges": no_new_privs,
        }))
    }

    /// `exec start`: the exec's stdio stream.
    pub fn exec_start(
        &self,
        exec_id: &str,
        tty_override: Option<bool>,
    ) -> Result<(UnixStream, bool)> {
        let exec = lock(&self.containers.execs)
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ContainerError::NotFound(format!("No such exec instance: {exec_id}")))?;
        if *lock(&exec.pid) != 0 {
            return Err(ContainerError::Conflict(format!(
                "Error: Exec command {exec_id} has already run"
            )));
        }
        let ctr = self.containers.find(&exec.container)?;
        check_running(&ctr.rec())?;
        let tty = tty_override.unwrap_or(exec.config.tty) || exec.config.tty;
        let process = self.exec_process(&ctr, &exec.config, tty)?;
        let (reply, stream) = protocol::request(
            &ctr.paths.state,
            &Request::Exec {
                id: exec.id.clone(),
                process,
                stdin: exec.config.attach_stdin,
                stdout: exec.config.attach_stdout,
                stderr: exec.config.attach_stderr,
            },
        )
        .map_err(|e| {
            // As dockerd: the exec ran and failed (127: no such program).
            *lock(&exec.pid) = -1;
            let text = e.to_string().to_lowercase();
            let missing = text.contains("not found") || text.contains("no such file");
            let status = ExitStatus {
                exit_code: if missing { 127 } else { 126 },
                finished_at: chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0),
                oom_killed: false,
            };
            if let Ok(text) = serde_json::to_vec(&status) {
                let _ = std::fs::write(protocol::exec_exit_file(&exec.state_dir, &exec.id), text);
            }
            ContainerError::Start(exec_error(&e.to_string()))
        })?;
        if let Reply::Pid(pid) = reply {
            *lock(&exec.pid) = pid;
        }
        if let Some(size) = &exec.config.console_size {
            if let (Some(h), Some(w)) = (size.first(), size.get(1)) {
                let _ = self.exec_resize(exec_id, *h, *w);
            }
        }
        let (name, image) = {
            let r = ctr.rec();
            (r.name.clone(), r.config.image.clone())
        };
        let cmd = exec.config.cmd.clone().unwrap_or_default().join(" ");
        self.container_event(
            &exec.container,
            &format!("exec_start: {cmd}"),
            &[("execID", exec_id), ("image", &image), ("name", &name)],
        );
        Ok((stream, tty))
    }

    /// Resizes an exec's terminal.
    pub fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<()> {
        let exec = lock(&self.containers.execs)
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ContainerError::NotFound(format!("No such exec instance: {exec_id}")))?;
        protocol::request(
            &exec.state_dir,
            &Request::Resize {
                exec: Some(exec.id.clone()),
                height,
                width,
            },
        )
        .map(|_| ())
        .map_err(|e| ContainerError::Conflict(e.to_string()))
    }

    /// An exec's state: (running, exit code, pid).
    pub fn exec_state(&self, exec_id: &str) -> Result<(Arc<Exec>, bool, Option<i64>, i32)> {
        let exec = lock(&self.containers.execs)
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ContainerError::NotFound(format!("No such exec instance: {exec_id}")))?;
        let pid = *lock(&exec.pid);
        let exit = ExitStatus::read(&protocol::exec_exit_file(&exec.state_dir, &exec.id));
        let running =
            pid != 0 && exit.is_none() && std::path::Path::new(&format!("/proc/{pid}")).exists();
        let code = exit
            .map(|e| i64::from(e.exit_code))
            .or_else(|| (pid != 0 && !running).then_some(137));
        Ok((exec, running, code, pid))
    }

    /// Attaches to the container's stdio (now, or when it starts).
    pub fn attach(
        &self,
        key: &str,
        streams: (bool, bool, bool),
    ) -> Result<(hafen_api::server::AttachStream, bool)> {
        let ctr = self.containers.find(key)?;
        let r = ctr.rec();
        let tty = r.config.tty;
        match r.state.status {
            Status::Running | Status::Paused => {
                drop(r);
                let (i, o, e) = streams;
                let (_, s) = protocol::request(
                    &ctr.paths.state,
                    &Request::Attach {
                        stdin: i,
                        stdout: o,
                        stderr: e,
                    },
                )
                .map_err(|e| ContainerError::Conflict(e.to_string()))?;
                Ok((hafen_api::server::AttachStream::Ready(s), tty))
            }
            Status::Created | Status::Exited | Status::Restarting => {
                drop(r);
                let (tx, rx) = tokio::sync::oneshot::channel();
                lock(&ctr.pending).push(super::PendingAttach { streams, tx });
                Ok((hafen_api::server::AttachStream::Pending(rx), tty))
            }
            _ => Err(ContainerError::Conflict(
                "You cannot attach to a stopped container, start it first".into(),
            )),
        }
    }

    /// Resizes the container's terminal.
    pub fn resize(&self, key: &str, height: u16, width: u16) -> Result<()> {
        let ctr = self.containers.find(key)?;
        check_running(&ctr.rec())?;
        protocol::request(
            &ctr.paths.state,
            &Request::Resize {
                exec: None,
                height,
                width,
            },
        )
        .map(|_| ())
        .map_err(|e| ContainerError::Conflict(e.to_string()))
    }

    /// Runs a command in the container and collects its output (for
    /// healthchecks): exit code and up to 4 KiB of output; `None` on
    /// timeout (the process is killed).
    pub fn exec_capture(
        &self,
        ctr: &Ctr,
        args: Vec<String>,
        timeout: Duration,
    ) -> Result<(i64, String)> {
        let config = ExecConfig {
            attach_stdout: true,
            attach_stderr: true,
            cmd: Some(args),
            ..ExecConfig::default()
        };
        let process = self.exec_process(ctr, &config, false)?;
        let id = new_id();
        let (reply, mut stream) = protocol::request(
            &ctr.paths.state,
            &Request::Exec {
                id: id.clone(),
                process,
                stdin: false,
                stdout: true,
                stderr: true,
            },
        )
        .map_err(|e| ContainerError::Start(exec_error(&e.to_string())))?;
        let pid = match reply {
            Reply::Pid(p) => p,
            _ => 0,
        };
        let _ = stream.set_read_timeout(Some(timeout));
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let started = std::time::Instant::now();
        let timed_out = loop {
            match stream.read(&mut buf) {
                Ok(0) => break false,
                Ok(n) => {
                    if raw.len() < 64 * 1024 {
                        raw.extend_from_slice(&buf[..n]);
                    }
                }
                Err(_) => break started.elapsed() >= timeout,
            }
        };
        if timed_out {
            if pid > 0 {
                let _ = hafen_runtime::sys::kill(pid, libc::SIGKILL);
            }
            return Err(ContainerError::Internal(format!(
                "Health check exceeded timeout ({}s)",
                timeout.as_secs_f64()
            )));
        }
        let exit_file = protocol::exec_exit_file(&ctr.paths.state, &id);
        let mut code = None;
        for _ in 0..200 {
            if let Some(e) = ExitStatus::read(&exit_file) {
                code = Some(i64::from(e.exit_code));
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = std::fs::remove_file(&exit_file);
        Ok((code.unwrap_or(-1), demux(&raw)))
    }
}

/// The payload of multiplexed frames as text (at most 4 KiB, as Docker
/// keeps of a healthcheck's output).
fn demux(raw: &[u8]) -> String {
    let mut out = Vec::new();
    let mut rest = raw;
    while rest.len() >= 8 {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let end = (8 + len).min(rest.len());
        out.extend_from_slice(&rest[8..end]);
        rest = &rest[end..];
    }
    out.truncate(4096);
    String::from_utf8_lossy(&out).into_owned()
}

fn check_running(r: &super::record::Record) -> Result<()> {
    match r.state.status {
        Status::Running => Ok(()),
        Status::Paused => Err(ContainerError::Conflict(format!(
            "container {} is paused, unpause the container before exec",
            r.id
        ))),
        _ => Err(ContainerError::Conflict(format!(
            "container {} is not running",
            r.id
        ))),
    }
}

/// Docker's wording for a program that cannot be run.
fn exec_error(text: &str) -> String {
    format!("OCI runtime exec failed: exec failed: {text}: unknown")
}
