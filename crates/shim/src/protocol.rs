//! What the daemon and a shim say to each other.
//!
//! The daemon starts `hafen-shim` with a [`ShimConfig`] as JSON on its
//! stdin. The shim answers one [`Ready`] line on its stdout once the
//! container is created (its init waits to be started) and its socket
//! listens. Then every request is a connection to that socket
//! ([`SOCKET`] in the state directory): one JSON [`Request`] line, one JSON
//! [`Reply`] line; after the reply to `attach` or `exec` the connection is
//! the process's stdio: what the client writes goes to the process's stdin,
//! its output comes back raw (with a terminal) or in Docker's multiplexed
//! frames (8-byte header: stream, three zero bytes, big-endian length).
//!
//! When the container exits the shim writes [`ExitStatus`] to [`EXIT_FILE`]
//! (atomically), removes the container from the runtime, closes every
//! connection and ends. An exec's exit status goes to `exec-<id>.json`
//! before its stream is closed.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The shim's socket in the state directory.
pub const SOCKET: &str = "shim.sock";
/// The container's exit status in the state directory.
pub const EXIT_FILE: &str = "exit.json";
/// The shim's pid in the state directory.
pub const PID_FILE: &str = "shim.pid";

/// The exit file of an exec.
pub fn exec_exit_file(state_dir: &Path, exec_id: &str) -> PathBuf {
    state_dir.join(format!("exec-{exec_id}.json"))
}

/// How to run one container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShimConfig {
    /// The container's ID (also its ID in the runtime).
    pub id: String,
    /// The runtime's state root.
    pub runtime_root: PathBuf,
    /// The OCI bundle (config.json; the root filesystem is mounted).
    pub bundle: PathBuf,
    /// Where the socket and the exit files go.
    pub state_dir: PathBuf,
    /// The json-file log.
    pub log_path: PathBuf,
    /// `max-size`, `max-file` and friends.
    pub log_opts: BTreeMap<String, String>,
    /// The process has a terminal.
    pub tty: bool,
    /// The process gets a stdin (`OpenStdin`).
    pub stdin: bool,
    /// Close the process's stdin when the first attached client's input ends.
    pub stdin_once: bool,
    /// The terminal's size (rows, columns).
    pub console_size: Option<(u16, u16)>,
    /// The root filesystem's mounts, which the shim makes at
    /// `<bundle>/rootfs` in a mount namespace of its own (none: the bundle's
    /// root filesystem is there already).
    #[serde(default)]
    pub rootfs_mounts: Vec<crate::rootfs::RootfsMount>,
}

/// The shim's first line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ready {
    /// Created: the init's pid on the host.
    Created {
        /// The init's pid.
        pid: i32,
    },
    /// The container could not be created.
    Failed {
        /// Why.
        message: String,
    },
}

/// A request on the shim's socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Request {
    /// Make this connection a stream of the container's stdio.
    Attach {
        /// Send what the client writes to the container's stdin.
        stdin: bool,
        /// Send the container's stdout.
        stdout: bool,
        /// Send the container's stderr.
        stderr: bool,
    },
    /// Start the created container.
    Start,
    /// Resize the terminal of the container (or of an exec).
    Resize {
        /// The exec, or the container when `None`.
        exec: Option<String>,
        /// Rows.
        height: u16,
        /// Columns.
        width: u16,
    },
    /// Start a process in the container; the connection becomes its stdio.
    Exec {
        /// The exec's ID.
        id: String,
        /// The OCI process.
        process: serde_json::Value,
        /// Whether its stdin is read from the connection.
        stdin: bool,
        /// Whether its stdout goes to the connection.
        stdout: bool,
        /// Whether its stderr goes to the connection.
        stderr: bool,
    },
    /// Close the container's stdin.
    CloseStdin,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    /// Done.
    Ok,
    /// Started a process with this pid.
    Pid(i32),
    /// Failed.
    Error(String),
}

/// How a container (or an exec) ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitStatus {
    /// The exit code (128 + the signal for a killed process).
    pub exit_code: i32,
    /// When (Unix ns).
    pub finished_at: i64,
    /// Killed by the kernel's OOM killer.
    pub oom_killed: bool,
}

impl ExitStatus {
    /// Reads an exit file (`None` if there is none or it is unreadable).
    pub fn read(path: &Path) -> Option<ExitStatus> {
        let bytes = std::fs::read(path).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

/// The stream number of a multiplexed frame.
pub const STDOUT: u8 = 1;
/// The stream number of a multiplexed frame.
pub const STDERR: u8 = 2;

/// The 8-byte header of a multiplexed frame.
pub fn frame_header(stream: u8, len: usize) -> [u8; 8] {
    let n = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
    [stream, 0, 0, 0, n[0], n[1], n[2], n[3]]
}

/// Errors of the daemon's side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The socket.
    #[error("cannot reach the container's shim: {0}")]
    Io(#[from] std::io::Error),
    /// The shim said no.
    #[error("{0}")]
    Refused(String),
    /// Not JSON.
    #[error("the container's shim answered something unreadable: {0}")]
    Protocol(String),
}

/// Sends one request and reads its reply; returns the connection (a stdio
/// stream after `attach` and `exec`).
pub fn request(state_dir: &Path, req: &Request) -> Result<(Reply, UnixStream), ClientError> {
    let mut stream = via_short_path(&state_dir.join(SOCKET), |p| UnixStream::connect(p))?;
    let mut line = serde_json::to_vec(req).map_err(|e| ClientError::Protocol(e.to_string()))?;
    line.push(b'\n');
    stream.write_all(&line)?;
    // Byte by byte: what follows the reply line is the stream's.
    let mut reply = Vec::with_capacity(32);
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte)? {
            0 => {
                return Err(ClientError::Protocol(
                    "the shim closed the connection".into(),
                ));
            }
            _ if byte[0] == b'\n' => break,
            _ => reply.push(byte[0]),
        }
        if reply.len() > 64 * 1024 {
            return Err(ClientError::Protocol("reply too long".into()));
        }
    }
    let reply: Reply =
        serde_json::from_slice(&reply).map_err(|e| ClientError::Protocol(e.to_string()))?;
    if let Reply::Error(message) = reply {
        return Err(ClientError::Refused(message));
    }
    Ok((reply, stream))
}

/// Runs `f` (a bind or connect) with `path`, or, when `path` is too long
/// for a socket address (107 bytes), with `/proc/self/fd/<dir>/<name>`.
pub fn via_short_path<T>(
    path: &Path,
    f: impl FnOnce(&Path) -> std::io::Result<T>,
) -> std::io::Result<T> {
    use std::os::fd::AsRawFd;
    if path.as_os_str().len() < 100 {
        return f(path);
    }
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return f(path);
    };
    let dir = std::fs::File::open(parent)?;
    let short = Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name);
    f(&short)
}

/// Reads the shim's first line from its stdout.
pub fn read_ready(out: impl Read) -> Result<Ready, ClientError> {
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    if line.is_empty() {
        return Err(ClientError::Protocol(
            "the shim ended before the container was created".into(),
        ));
    }
    serde_json::from_str(&line).map_err(|e| ClientError::Protocol(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_one_line_of_json() {
        let r = Request::Resize {
            exec: None,
            height: 24,
            width: 80,
        };
        let text = serde_json::to_string(&r).expect("serializes");
        assert!(!text.contains('\n'));
        assert_eq!(serde_json::from_str::<Request>(&text).expect("parses"), r);
        assert_eq!(frame_header(STDERR, 258), [2, 0, 0, 0, 0, 0, 1, 2]);
    }

    #[test]
    fn sockets_in_deep_directories_work() {
        let dir = tempfile::tempdir().expect("tempdir");
        let deep = dir.path().join("d".repeat(110));
        std::fs::create_dir(&deep).expect("mkdir");
        let path = deep.join(SOCKET);
        assert!(std::os::unix::net::UnixListener::bind(&path).is_err());
        let listener = via_short_path(&path, |p| std::os::unix::net::UnixListener::bind(p))
            .expect("binds through the directory");
        let client = via_short_path(&path, |p| UnixStream::connect(p)).expect("connects");
        drop((listener, client));
    }
}
