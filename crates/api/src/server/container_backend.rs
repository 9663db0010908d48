//! What the container routes need of the backend. Long waits (wait,
//! attach before start) come back as futures or channels so that they do
//! not hold a blocking thread.

use std::future::Future;
use std::io::Write;
use std::os::unix::net::UnixStream;
use std::pin::Pin;

use crate::ApiError;
use crate::filters::Filters;
use crate::models::{
    ChangeItem, ContainerCreate, ContainerCreated, ContainerInspect, ContainerPruneReport,
    ContainerSummary, ExecConfig, ExecInspect, HostConfig, TopResponse, WaitResponse,
};

/// A future the handlers await.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// `POST /containers/{id}/wait?condition=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Until it is not running (the default).
    NotRunning,
    /// Until it next exits.
    NextExit,
    /// Until it is removed.
    Removed,
}

/// What to attach to.
#[derive(Debug, Clone, Copy, Default)]
pub struct AttachOptions {
    /// Send the client's input to stdin.
    pub stdin: bool,
    /// Send stdout.
    pub stdout: bool,
    /// Send stderr.
    pub stderr: bool,
    /// Send the log so far first (`logs=1`).
    pub logs: bool,
    /// Stream live output (`stream=1`).
    pub stream: bool,
}

/// An attached stream: the process's stdio over a unix socket (framed by
/// the shim when there is no terminal), now or once the container starts.
#[derive(Debug)]
pub enum AttachStream {
    /// Connected.
    Ready(UnixStream),
    /// Connected when the container starts (`None`: it ended first).
    Pending(tokio::sync::oneshot::Receiver<Option<UnixStream>>),
    /// Nothing to stream (e.g. `stream=0`).
    Closed,
}

/// An attach, with what the server needs to relay it.
#[derive(Debug)]
pub struct Attached {
    /// The stream.
    pub stream: AttachStream,
    /// Raw (terminal) rather than multiplexed output.
    pub tty: bool,
    /// The detach key sequence (bytes), empty for none.
    pub detach_keys: Vec<u8>,
    /// Log output to send before the stream (already framed).
    pub prefix: Vec<u8>,
}

/// `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    /// Follow.
    pub follow: bool,
    /// stdout.
    pub stdout: bool,
    /// stderr.
    pub stderr: bool,
    /// Unix time (s, ns) lower bound.
    pub since: Option<(i64, u32)>,
    /// Unix time (s, ns) upper bound.
    pub until: Option<(i64, u32)>,
    /// Prefix lines with their time.
    pub timestamps: bool,
    /// The last N lines (`None`: all).
    pub tail: Option<usize>,
}

/// `GET /containers/json`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Also stopped ones.
    pub all: bool,
    /// At most this many, newest first (`-n`, `-l` = 1).
    pub limit: Option<usize>,
    /// Compute sizes.
    pub size: bool,
    /// Filters.
    pub filters: Filters,
}

/// The container half of the backend.
pub trait ContainerBackend: Send + Sync + 'static {
    /// `POST /containers/create?name=`.
    fn container_create(
        &self,
        name: Option<&str>,
        body: ContainerCreate,
    ) -> Result<ContainerCreated, ApiError>;
    /// `POST /containers/{id}/start`. `Ok(false)`: it was already running (304).
    fn container_start(&self, id: &str) -> Result<bool, ApiError>;
    /// `POST /containers/{id}/stop?t=&signal=`. `Ok(false)`: not running (304).
    fn container_stop(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool, ApiError>;
    /// `POST /containers/{id}/restart?t=&signal=`.
    fn container_restart(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), ApiError>;
    /// `POST /containers/{id}/kill?signal=`.
    fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<(), ApiError>;
    /// `POST /containers/{id}/pause`.
    fn container_pause(&self, id: &str) -> Result<(), ApiError>;
    /// `POST /containers/{id}/unpause`.
    fn container_unpause(&self, id: &str) -> Result<(), ApiError>;
    /// `DELETE /containers/{id}?force=&v=`.
    fn container_remove(&self, id: &str, force: bool, volumes: bool) -> Result<(), ApiError>;
    /// `POST /containers/{id}/rename?name=`.
    fn container_rename(&self, id: &str, name: &str) -> Result<(), ApiError>;
    /// `POST /containers/{id}/update`: returns warnings.
    fn container_update(&self, id: &str, update: HostConfig) -> Result<Vec<String>, ApiError>;
    /// `GET /containers/json`.
    fn container_list(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>, ApiError>;
    /// `GET /containers/{id}/json?size=`.
    fn container_inspect(&self, id: &str, size: bool) -> Result<ContainerInspect, ApiError>;
    /// `POST /containers/{id}/wait`: checks the container now, then a
    /// future that ends with the wait's answer.
    fn container_wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<BoxFuture<WaitResponse>, ApiError>;
    /// `POST /containers/{id}/attach`.
    fn container_attach(
        &self,
        id: &str,
        opts: AttachOptions,
        detach_keys: Option<&str>,
    ) -> Result<Attached, ApiError>;
    /// `POST /containers/{id}/resize?h=&w=`.
    fn container_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ApiError>;
    /// Checks a logs request (404, 400) before the response starts.
    fn container_logs_check(&self, id: &str) -> Result<bool, ApiError>;
    /// `GET /containers/{id}/logs`: framed (or raw with a terminal) output
    /// to `out` until done (or, following, until the container stops or
    /// `out` fails).
    fn container_logs(
        &self,
        id: &str,
        opts: &LogsOptions,
        out: &mut dyn Write,
    ) -> Result<(), ApiError>;
    /// `GET /containers/{id}/top?ps_args=`.
    fn container_top(&self, id: &str, ps_args: Option<&str>) -> Result<TopResponse, ApiError>;
    /// `GET /containers/{id}/stats?stream=false`: one sample (Docker's
    /// stats JSON; `precpu_stats` from `previous` if given).
    fn container_stats(
        &self,
        id: &str,
        previous: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ApiError>;
    /// `GET /containers/{id}/changes`.
    fn container_changes(&self, id: &str) -> Result<Vec<ChangeItem>, ApiError>;
    /// `GET /containers/{id}/export`: the root filesystem as a tar.
    fn container_export(&self, id: &str, out: &mut dyn Write) -> Result<(), ApiError>;
    /// `HEAD /containers/{id}/archive?path=`: the path's stat, as the
    /// `X-Docker-Container-Path-Stat` JSON.
    fn container_archive_stat(&self, id: &str, path: &str) -> Result<serde_json::Value, ApiError>;
    /// `GET /containers/{id}/archive?path=`: a tar of the path.
    fn container_archive_get(
        &self,
        id: &str,
        path: &str,
        out: &mut dyn Write,
    ) -> Result<(), ApiError>;
    /// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`:
    /// extracts a tar into the path.
    fn container_archive_put(
        &self,
        id: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        input: Box<dyn std::io::Read + Send>,
    ) -> Result<(), ApiError>;
    /// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`:
    /// the new image's ID.
    #[allow(clippy::too_many_arguments)]
    fn container_commit(
        &self,
        id: &str,
        reference: Option<&str>,
        comment: &str,
        author: &str,
        pause: bool,
        changes: &[String],
        config: Option<serde_json::Value>,
    ) -> Result<String, ApiError>;
    /// `POST /containers/prune`.
    fn container_prune(&self, filters: &Filters) -> Result<ContainerPruneReport, ApiError>;
    /// `POST /containers/{id}/exec`: the exec's ID.
    fn exec_create(&self, id: &str, config: ExecConfig) -> Result<String, ApiError>;
    /// `POST /exec/{id}/start`: `detach` starts it without a stream.
    fn exec_start(&self, exec_id: &str, detach: bool, tty: bool) -> Result<Attached, ApiError>;
    /// `POST /exec/{id}/resize`.
    fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<(), ApiError>;
    /// `GET /exec/{id}/json`.
    fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect, ApiError>;
}
