//! The container routes over a real socket, against a stand-in backend
//! that records what it was asked and hands the test the container's end
//! of every attach. The engine's real behaviour is tested end to end
//! elsewhere; this is the HTTP layer: parameters, statuses, streaming and
//! the hijacked connections (detach keys, half-close, pending starts).

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::{base64, parse_time, stream_type};
use crate::client::{self, Client, ClientError, MULTIPLEXED_STREAM, RAW_STREAM};
use crate::filters::Filters;
use crate::models::{
    ChangeItem, ContainerCreate, ContainerCreated, ContainerInspect, ContainerPruneReport,
    ContainerSummary, DeleteItem, ExecConfig, ExecInspect, HistoryItem, HostConfig, ImageInspect,
    ImagePruneReport, ImageSummary, JsonMessage, TopResponse, Version, Volume, VolumeCreate,
    VolumeList, VolumePruneReport, WaitResponse,
};
use crate::server::{
    AttachOptions, AttachStream, Attached, Backend, BoxFuture, ContainerBackend, EventFeed,
    ImportRequest, ListOptions, LogsOptions, VolumeBackend, WaitCondition,
};
use crate::{ApiError, ApiVersion};

const WAIT: Duration = Duration::from_secs(10);

/// The stand-in backend.
struct Fake {
    /// Calls, one line each.
    calls: Mutex<Vec<String>>,
    /// The container's end of each attach or exec stream.
    peers: mpsc::UnboundedSender<UnixStream>,
    /// Completes the pending attach of `pending`.
    pending: Mutex<Option<oneshot::Sender<Option<UnixStream>>>>,
    /// Ends the wait.
    wait: Mutex<Option<oneshot::Sender<WaitResponse>>>,
    started: AtomicBool,
    samples: AtomicI64,
}

fn missing(id: &str) -> Result<(), ApiError> {
    if id == "missing" {
        Err(ApiError::not_found(format!("No such container: {id}")))
    } else {
        Ok(())
    }
}

impl Fake {
    fn record(&self, call: String) {
        self.calls.lock().expect("lock").push(call);
    }

    fn calls(&self) -> Vec<String> {
        self.calls.lock().expect("lock").clone()
    }

    fn stream(&self) -> AttachStream {
        let (ours, theirs) = UnixStream::pair().expect("socketpair");
        self.peers.send(theirs).expect("test listens");
        AttachStream::Ready(ours)
    }
}

impl ContainerBackend for Fake {
    fn container_create(
        &self,
        name: Option<&str>,
        body: ContainerCreate,
    ) -> Result<ContainerCreated, ApiError> {
        self.record(format!("create {name:?} {}", body.config.image));
        Ok(ContainerCreated {
            id: "c0ffee".into(),
            warnings: Vec::new(),
        })
    }
    fn container_start(&self, id: &str) -> Result<bool, ApiError> {
        missing(id)?;
        Ok(!self.started.swap(true, Ordering::SeqCst))
    }
    fn container_stop(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool, ApiError> {
        self.record(format!("stop {id} {timeout:?} {signal:?}"));
        Ok(true)
    }
    fn container_restart(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<(), ApiError> {
        self.record(format!("restart {id} {timeout:?} {signal:?}"));
        Ok(())
    }
    fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<(), ApiError> {
        missing(id)?;
        self.record(format!("kill {id} {signal:?}"));
        Ok(())
    }
    fn container_pause(&self, id: &str) -> Result<(), ApiError> {
        missing(id)
    }
    fn container_unpause(&self, id: &str) -> Result<(), ApiError> {
        missing(id)
    }
    fn container_remove(&self, id: &str, force: bool, volumes: bool) -> Result<(), ApiError> {
        missing(id)?;
        self.record(format!("remove {id} {force} {volumes}"));
        Ok(())
    }
    fn container_rename(&self, id: &str, name: &str) -> Result<(), ApiError> {
        self.record(format!("rename {id} {name}"));
        Ok(())
    }
    fn container_update(&self, id: &str, update: HostConfig) -> Result<Vec<String>, ApiError> {
        self.record(format!(
            "update {id} {} {:?}",
            update.memory, update.pids_limit
        ));
        Ok(Vec::new())
    }
    fn container_list(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>, ApiError> {
        self.record(format!(
            "list {} {:?} {} {:?}",
            opts.all, opts.limit, opts.size, opts.filters
        ));
        Ok(Vec::new())
    }
    fn container_inspect(&self, id: &str, size: bool) -> Result<ContainerInspect, ApiError> {
        missing(id)?;
        self.record(format!("inspect {id} {size}"));
        Ok(ContainerInspect {
            id: id.into(),
            ..ContainerInspect::default()
        })
    }
    fn container_wait(
        &self,
        id: &str,
        condition: WaitCondition,
    ) -> Result<BoxFuture<WaitResponse>, ApiError> {
        missing(id)?;
        self.record(format!("wait {id} {condition:?}"));
        let (tx, rx) = oneshot::channel();
        *self.wait.lock().expect("lock") = Some(tx);
        Ok(Box::pin(async move { rx.await.unwrap_or_default() }))
    }
    fn container_attach(
        &self,
        id: &str,
        opts: AttachOptions,
        detach_keys: Option<&str>,
    ) -> Result<Attached, ApiError> {
        missing(id)?;
        self.record(format!("attach {id} {detach_keys:?}"));
        let stream = if !opts.stream {
            AttachStream::Closed
        } else if id == "pending" {
            let (tx, rx) = oneshot::channel();
            *self.pending.lock().expect("lock") = Some(tx);
            AttachStream::Pending(rx)
        } else {
            self.stream()
        };
        Ok(Attached {
            stream,
            tty: id == "tty",
            detach_keys: vec![16, 17],
            prefix: if opts.logs {
                b"LOG".to_vec()
            } else {
                Vec::new()
            },
        })
    }
    fn container_resize(&self, id: &str, height: u16, width: u16) -> Result<(), ApiError> {
        self.record(format!("resize {id} {height} {width}"));
        Ok(())
    }
    fn container_logs_check(&self, id: &str) -> Result<bool, ApiError> {
        missing(id)?;
        Ok(id == "tty")
    }
    fn container_logs(
        &self,
        id: &str,
        opts: &LogsOptions,
        out: &mut dyn std::io::Write,
    ) -> Result<(), ApiError> {
        self.record(format!(
            "logs {id} {} {:?} {:?} {:?}",
            opts.follow, opts.since, opts.until, opts.tail
        ));
        out.write_all(&client::mux_frame(1, b"line\n"))
            .map_err(|e| ApiError::internal(e.to_string()))
    }
    fn container_top(&self, _: &str, _: Option<&str>) -> Result<TopResponse, ApiError> {
        Ok(TopResponse::default())
    }
    fn container_stats(
        &self,
        id: &str,
        previous: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value, ApiError> {
        missing(id)?;
        let n = self.samples.fetch_add(1, Ordering::SeqCst);
        Ok(serde_json::json!({
            "read": "2025-01-01T00:00:00Z",
            "n": n,
            "prev": previous.map(|p| p["n"].clone()),
        }))
    }
    fn container_changes(&self, _: &str) -> Result<Vec<ChangeItem>, ApiError> {
        Ok(Vec::new())
    }
    fn container_export(&self, id: &str, out: &mut dyn std::io::Write) -> Result<(), ApiError> {
        if id == "broken" {
            return Err(ApiError::internal("cannot export"));
        }
        out.write_all(b"TAR")
            .map_err(|e| ApiError::internal(e.to_string()))
    }
    fn container_archive_stat(&self, id: &str, path: &str) -> Result<serde_json::Value, ApiError> {
        missing(id)?;
        Ok(serde_json::json!({"name": path, "size": 3}))
    }
    fn container_archive_get(
        &self,
        _: &str,
        _: &str,
        out: &mut dyn std::io::Write,
    ) -> Result<(), ApiError> {
        out.write_all(b"TAR")
            .map_err(|e| ApiError::internal(e.to_string()))
    }
    fn container_archive_put(
        &self,
        id: &str,
        path: &str,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
        mut input: Box<dyn Read + Send>,
    ) -> Result<(), ApiError> {
        let mut body = String::new();
        input
            .read_to_string(&mut body)
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.record(format!(
            "put {id} {path} {no_overwrite_dir_non_dir} {copy_uid_gid} {body}"
        ));
        Ok(())
    }
    fn container_commit(
        &self,
        id: &str,
        reference: Option<&str>,
        comment: &str,
        author: &str,
        pause: bool,
        changes: &[String],
        config: Option<serde_json::Value>,
    ) -> Result<String, ApiError> {
        self.record(format!(
            "commit {id} {reference:?} {comment} {author} {pause} {changes:?} {config:?}"
        ));
        Ok("sha256:abc".into())
    }
    fn container_prune(&self, _: &Filters) -> Result<ContainerPruneReport, ApiError> {
        Ok(ContainerPruneReport::default())
    }
    fn exec_create(&self, id: &str, config: ExecConfig) -> Result<String, ApiError> {
        self.record(format!("exec {id} {:?}", config.cmd));
        Ok("e1".into())
    }
    fn exec_start(&self, exec_id: &str, detach: bool, tty: bool) -> Result<Attached, ApiError> {
        self.record(format!("exec_start {exec_id} {detach} {tty}"));
        Ok(Attached {
            stream: if detach {
                AttachStream::Closed
            } else {
                self.stream()
            },
            tty,
            detach_keys: Vec::new(),
            prefix: Vec::new(),
        })
    }
    fn exec_resize(&self, exec_id: &str, height: u16, width: u16) -> Result<(), ApiError> {
        self.record(format!("exec_resize {exec_id} {height} {width}"));
        Ok(())
    }
    fn exec_inspect(&self, exec_id: &str) -> Result<ExecInspect, ApiError> {
        Ok(ExecInspect {
            id: exec_id.into(),
            ..ExecInspect::default()
        })
    }
}

fn unsupported<T>() -> Result<T, ApiError> {
    Err(ApiError::internal("not in this test"))
}

impl VolumeBackend for Fake {
    fn volume_list(&self, _: &Filters) -> Result<VolumeList, ApiError> {
        unsupported()
    }
    fn volume_create(&self, _: &VolumeCreate) -> Result<Volume, ApiError> {
        unsupported()
    }
    fn volume_inspect(&self, _: &str) -> Result<Volume, ApiError> {
        unsupported()
    }
    fn volume_delete(&self, _: &str, _: bool) -> Result<(), ApiError> {
        unsupported()
    }
    fn volume_prune(&self, _: &Filters) -> Result<VolumePruneReport, ApiError> {
        unsupported()
    }
    fn volume_usage(&self) -> Result<Vec<Volume>, ApiError> {
        unsupported()
    }
}

impl crate::server::NetworkBackend for Fake {
    fn network_list(&self, _: &Filters) -> Result<Vec<crate::models::Network>, ApiError> {
        unsupported()
    }
    fn network_inspect(&self, _: &str) -> Result<crate::models::Network, ApiError> {
        unsupported()
    }
    fn network_create(
        &self,
        _: &crate::models::NetworkCreate,
    ) -> Result<crate::models::NetworkCreateResponse, ApiError> {
        unsupported()
    }
    fn network_delete(&self, _: &str) -> Result<(), ApiError> {
        unsupported()
    }
    fn network_connect(&self, _: &str, _: &crate::models::NetworkConnect) -> Result<(), ApiError> {
        unsupported()
    }
    fn network_disconnect(
        &self,
        _: &str,
        _: &crate::models::NetworkDisconnect,
    ) -> Result<(), ApiError> {
        unsupported()
    }
    fn network_prune(&self, _: &Filters) -> Result<crate::models::NetworkPruneReport, ApiError> {
        unsupported()
    }
}

impl crate::server::BuildBackend for Fake {
    fn build(
        &self,
        _: crate::models::BuildOptions,
        _: Box<dyn Read + Send>,
        _: &mut dyn FnMut(JsonMessage),
    ) -> Result<(), ApiError> {
        unsupported()
    }
    fn build_prune(&self, _: bool) -> Result<(u64, Vec<String>), ApiError> {
        unsupported()
    }
}

impl Backend for Fake {
    fn version(&self) -> Version {
        Version::default()
    }
    fn info(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn images(&self, _: bool, _: &Filters) -> Result<Vec<ImageSummary>, ApiError> {
        unsupported()
    }
    fn image_inspect(&self, _: &str) -> Result<ImageInspect, ApiError> {
        unsupported()
    }
    fn image_history(&self, _: &str) -> Result<Vec<HistoryItem>, ApiError> {
        unsupported()
    }
    fn image_tag(&self, _: &str, _: &str, _: &str) -> Result<(), ApiError> {
        unsupported()
    }
    fn image_delete(&self, _: &str, _: bool, _: bool) -> Result<Vec<DeleteItem>, ApiError> {
        unsupported()
    }
    fn image_prune(&self, _: &Filters) -> Result<ImagePruneReport, ApiError> {
        unsupported()
    }
    fn image_load(
        &self,
        _: Box<dyn Read + Send>,
        _: bool,
        _: &mut dyn FnMut(JsonMessage),
    ) -> Result<(), ApiError> {
        unsupported()
    }
    fn image_save_check(&self, _: &[String]) -> Result<(), ApiError> {
        unsupported()
    }
    fn image_save(&self, _: &[String], _: &mut dyn std::io::Write) -> Result<(), ApiError> {
        unsupported()
    }
    fn image_import(&self, _: Box<dyn Read + Send>, _: &ImportRequest) -> Result<String, ApiError> {
        unsupported()
    }
    fn disk_usage(&self) -> Result<(i64, Vec<ImageSummary>), ApiError> {
        unsupported()
    }
    fn events(&self, _: Option<i64>) -> EventFeed {
        let (_tx, live) = tokio::sync::broadcast::channel(1);
        EventFeed {
            past: Vec::new(),
            live,
        }
    }
}

/// A server on a socket of its own, and a client of it.
struct Harness {
    client: Client,
    fake: Arc<Fake>,
    peers: mpsc::UnboundedReceiver<UnixStream>,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("api.sock");
    let listener = tokio::net::UnixListener::bind(&socket).expect("bind");
    let (peers_tx, peers) = mpsc::unbounded_channel();
    let fake = Arc::new(Fake {
        calls: Mutex::new(Vec::new()),
        peers: peers_tx,
        pending: Mutex::new(None),
        wait: Mutex::new(None),
        started: AtomicBool::new(false),
        samples: AtomicI64::new(0),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let backend: Arc<dyn Backend> = fake.clone();
    tokio::spawn(crate::server::serve(
        listener,
        backend,
        "test",
        async move {
            let _ = stopped.await;
        },
    ));
    Harness {
        client: Client::new(&socket),
        fake,
        peers,
        _stop: stop,
        _dir: dir,
    }
}

impl Harness {
    /// The container's end of the latest attach.
    async fn peer(&mut self) -> tokio::net::UnixStream {
        let s = tokio::time::timeout(WAIT, self.peers.recv())
            .await
            .expect("in time")
            .expect("a stream");
        s.set_nonblocking(true).expect("nonblocking");
        tokio::net::UnixStream::from_std(s).expect("tokio stream")
    }

    async fn call(&self, method: Method, path: &str) -> Result<(u16, String), ClientError> {
        self.call_with(method, path, None).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        json_body: Option<&str>,
    ) -> Result<(u16, String), ClientError> {
        let body = match json_body {
            Some(b) => client::from_reader(std::io::Cursor::new(b.as_bytes().to_vec())),
            None => client::empty(),
        };
        let ct = json_body.map(|_| "application/json");
        let resp = self.client.request(method, path, ct, body).await?;
        let status = resp.status().as_u16();
        let bytes = client::body_bytes(resp).await?;
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

async fn read_to_end<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Vec<u8> {
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, r.read_to_end(&mut out))
        .await
        .expect("in time")
        .expect("reads");
    out
}

async fn read_exact<R: tokio::io::AsyncRead + Unpin>(r: &mut R, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    tokio::time::timeout(WAIT, r.read_exact(&mut out))
        .await
        .expect("in time")
        .expect("reads");
    out
}

fn api_status(r: Result<(u16, String), ClientError>) -> (u16, String) {
    match r {
        Ok(ok) => ok,
        Err(ClientError::Api { status, message }) => (status, message),
        Err(e) => panic!("unexpected failure: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_relays_both_ways_multiplexed() {
    let mut h = harness().await;
    let mut conn = h
        .client
        .hijack(
            Method::POST,
            "/containers/c1/attach?stream=1&stdin=1&stdout=1&stderr=1",
            None,
        )
        .await
        .expect("hijacked");
    assert_eq!(conn.content_type(), Some(MULTIPLEXED_STREAM));
    assert!(conn.is_multiplexed(true));
    assert!(conn.is_writable());
    let mut peer = h.peer().await;
    conn.write_all(b"hello").await.expect("write");
    assert_eq!(read_exact(&mut peer, 5).await, b"hello");
    let mut frames = client::mux_frame(1, b"out");
    frames.extend(client::mux_frame(2, b"err"));
    peer.write_all(&frames).await.expect("write");
    drop(peer);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    tokio::time::timeout(WAIT, client::demultiplex(&mut conn, &mut out, &mut err))
        .await
        .expect("in time")
        .expect("demultiplexed");
    assert_eq!((out.as_slice(), err.as_slice()), (&b"out"[..], &b"err"[..]));
    assert_eq!(h.fake.calls(), vec!["attach c1 None"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_is_raw_and_the_log_comes_first() {
    let mut h = harness().await;
    let mut conn = h
        .client
        .hijack(
            Method::POST,
            "/containers/tty/attach?stream=1&stdout=1&logs=1&detachKeys=ctrl-a",
            None,
        )
        .await
        .expect("hijacked");
    assert_eq!(conn.content_type(), Some(RAW_STREAM));
    assert!(!conn.is_multiplexed(false));
    let mut peer = h.peer().await;
    peer.write_all(b"live").await.expect("write");
    drop(peer);
    assert_eq!(read_to_end(&mut conn).await, b"LOGlive");
    assert_eq!(h.fake.calls(), vec!["attach tty Some(\"ctrl-a\")"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_keys_end_the_attach_and_never_reach_the_container() {
    let mut h = harness().await;
    let mut conn = h
        .client
        .hijack(Method::POST, "/containers/c1/attach?stream=1&stdin=1", None)
        .await
        .expect("hijacked");
    let mut peer = h.peer().await;
    conn.write_all(b"ab\x10").await.expect("write");
    conn.write_all(b"\x11zz").await.expect("write");
    // The container's side is closed, the client's connection too.
    assert_eq!(read_to_end(&mut peer).await, b"ab");
    assert_eq!(read_to_end(&mut conn).await, b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_input_half_closes_and_output_goes_on() {
    let mut h = harness().await;
    let mut conn = h
        .client
        .hijack(Method::POST, "/containers/c1/attach?stream=1&stdin=1", None)
        .await
        .expect("hijacked");
    let mut peer = h.peer().await;
    conn.write_all(b"in").await.expect("write");
    conn.shutdown().await.expect("half-close");
    assert_eq!(read_to_end(&mut peer).await, b"in");
    peer.write_all(b"late")
        .await
        .expect("write after the client's EOF");
    drop(peer);
    assert_eq!(read_to_end(&mut conn).await, b"late");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_sent_before_the_start_is_kept() {
    let h = harness().await;
    let mut conn = h
        .client
        .hijack(
            Method::POST,
            "/containers/pending/attach?stream=1&stdin=1",
            None,
        )
        .await
        .expect("hijacked");
    conn.write_all(b"early").await.expect("write");
    conn.shutdown().await.expect("half-close");
    // Give the server time to read it before the container starts.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (ours, theirs) = UnixStream::pair().expect("socketpair");
    let tx = h
        .fake
        .pending
        .lock()
        .expect("lock")
        .take()
        .expect("pending");
    tx.send(Some(ours)).expect("attach waits");
    theirs.set_nonblocking(true).expect("nonblocking");
    let mut peer = tokio::net::UnixStream::from_std(theirs).expect("tokio");
    assert_eq!(read_to_end(&mut peer).await, b"early");
    peer.write_all(b"x").await.expect("write");
    drop(peer);
    assert_eq!(read_to_end(&mut conn).await, b"x");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_that_ends_before_starting_closes_the_attach() {
    let h = harness().await;
    let mut conn = h
        .client
        .hijack(Method::POST, "/containers/pending/attach?stream=1", None)
        .await
        .expect("hijacked");
    let tx = loop {
        if let Some(tx) = h.fake.pending.lock().expect("lock").take() {
            break tx;
        }
        tokio::task::yield_now().await;
    };
    tx.send(None).expect("attach waits");
    assert_eq!(read_to_end(&mut conn).await, b"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_upgrade_the_output_streams_as_the_body() {
    let mut h = harness().await;
    let resp = h
        .client
        .request(
            Method::POST,
            "/containers/c1/attach?stream=1&stdout=1&logs=1",
            None,
            client::empty(),
        )
        .await
        .expect("attached");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(RAW_STREAM)
    );
    let mut peer = h.peer().await;
    peer.write_all(b"out").await.expect("write");
    drop(peer);
    let body = tokio::time::timeout(WAIT, client::body_bytes(resp))
        .await
        .expect("in time")
        .expect("body");
    assert_eq!(&body[..], b"LOGout");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_errors_come_back_like_other_errors() {
    let h = harness().await;
    match h
        .client
        .hijack(Method::POST, "/containers/missing/attach?stream=1", None)
        .await
    {
        Err(ClientError::Api { status, message }) => {
            assert_eq!(
                (status, message.as_str()),
                (404, "No such container: missing")
            );
        }
        other => panic!("expected a 404, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_start_hijacks_or_detaches() {
    let mut h = harness().await;
    let body = br#"{"Detach":false,"Tty":true,"ConsoleSize":[24,80]}"#.to_vec();
    let mut conn = h
        .client
        .hijack(Method::POST, "/exec/e1/start", Some(body))
        .await
        .expect("hijacked");
    assert_eq!(conn.content_type(), Some(RAW_STREAM));
    let mut peer = h.peer().await;
    conn.write_all(b"ls\n").await.expect("write");
    assert_eq!(read_exact(&mut peer, 3).await, b"ls\n");
    peer.write_all(b"bin\n").await.expect("write");
    drop(peer);
    assert_eq!(read_to_end(&mut conn).await, b"bin\n");
    let detached = h
        .call_with(Method::POST, "/exec/e1/start", Some(r#"{"Detach":true}"#))
        .await
        .expect("detached start");
    assert_eq!(detached, (200, String::new()));
    assert_eq!(
        h.fake.calls(),
        vec![
            "exec_start e1 false true",
            "exec_resize e1 24 80",
            "exec_start e1 true false"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_sends_the_status_before_the_container_exits() {
    let h = harness().await;
    let resp = tokio::time::timeout(
        WAIT,
        h.client.request(
            Method::POST,
            "/containers/c1/wait?condition=next-exit",
            None,
            client::empty(),
        ),
    )
    .await
    .expect("the status comes before the exit")
    .expect("200");
    assert_eq!(resp.status(), 200);
    let tx = h.fake.wait.lock().expect("lock").take().expect("waiting");
    tx.send(WaitResponse {
        status_code: 3,
        error: None,
    })
    .expect("still waiting");
    let body = client::body_bytes(resp).await.expect("body");
    assert_eq!(&body[..], b"{\"StatusCode\":3}\n");
    assert_eq!(h.fake.calls(), vec!["wait c1 NextExit"]);
    let bad = api_status(
        h.call(Method::POST, "/containers/c1/wait?condition=never")
            .await,
    );
    assert_eq!(bad, (400, "invalid condition: \"never\"".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_reads_the_body_as_dockerd_does() {
    let h = harness().await;
    let ok = h
        .call_with(
            Method::POST,
            "/containers/create?name=web",
            Some(r#"{"Image":"busybox","Cmd":["true"]}"#),
        )
        .await
        .expect("created");
    assert_eq!(ok, (201, "{\"Id\":\"c0ffee\",\"Warnings\":[]}\n".into()));
    let bad = api_status(
        h.call_with(Method::POST, "/containers/create", Some("{\"Image\":"))
            .await,
    );
    assert_eq!(bad.0, 400);
    assert!(bad.1.starts_with("invalid JSON: "), "{}", bad.1);
    let empty = api_status(
        h.call_with(
            Method::POST,
            "/containers/create",
            Some(r#"{"HostConfig":{}}"#),
        )
        .await,
    );
    assert_eq!(
        empty,
        (
            400,
            "config cannot be empty in order to create a container".into()
        )
    );
    let trailing = api_status(
        h.call_with(
            Method::POST,
            "/containers/create",
            Some(r#"{"Image":"a"} {}"#),
        )
        .await,
    );
    assert_eq!(trailing, (400, "unexpected content after JSON".into()));
    assert_eq!(h.fake.calls(), vec!["create Some(\"web\") busybox"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_statuses() {
    let h = harness().await;
    assert_eq!(
        h.call(Method::POST, "/containers/c1/start")
            .await
            .expect("start")
            .0,
        204
    );
    assert_eq!(
        h.call(Method::POST, "/containers/c1/start")
            .await
            .expect("again")
            .0,
        304
    );
    assert_eq!(
        api_status(h.call(Method::POST, "/containers/missing/kill").await).0,
        404
    );
    assert_eq!(
        h.call(Method::POST, "/containers/c1/stop?t=5&signal=SIGINT")
            .await
            .expect("stop")
            .0,
        204
    );
    assert_eq!(
        api_status(h.call(Method::POST, "/containers/c1/restart?t=x").await),
        (400, "strconv.Atoi: parsing \"x\": invalid syntax".into())
    );
    assert_eq!(
        h.call(Method::DELETE, "/containers/json?force=1")
            .await
            .expect("a container named json")
            .0,
        204
    );
    assert_eq!(
        api_status(h.call(Method::POST, "/containers/c1/rename").await),
        (400, "Neither old nor new names may be empty".into())
    );
    assert_eq!(
        h.call(Method::POST, "/containers/c1/resize?h=24&w=80")
            .await
            .expect("resize")
            .0,
        200
    );
    assert_eq!(
        api_status(
            h.call(Method::POST, "/containers/c1/resize?h=-1&w=80")
                .await
        ),
        (
            400,
            "invalid resize height \"-1\": value out of range".into()
        )
    );
    let update = h
        .call_with(
            Method::POST,
            "/containers/c1/update",
            Some(r#"{"Memory":1048576,"PidsLimit":-1}"#),
        )
        .await
        .expect("update");
    assert_eq!(update, (200, "{\"Warnings\":[]}\n".into()));
    assert_eq!(
        h.fake.calls(),
        vec![
            "stop c1 Some(5) Some(\"SIGINT\")",
            "remove json true false",
            "resize c1 24 80",
            "update c1 1048576 Some(0)",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_logs_parameters() {
    let h = harness().await;
    let filters = client::encode(r#"{"status":{"running":true}}"#);
    let list = h
        .call(
            Method::GET,
            &format!("/containers/json?all=1&limit=2&size=true&filters={filters}"),
        )
        .await
        .expect("list");
    assert_eq!(list, (200, "[]\n".into()));
    let resp = h
        .client
        .request(
            Method::GET,
            "/containers/c1/logs?stdout=1&since=1.5&until=2025-01-01T00:00:00.25Z&tail=3",
            None,
            client::empty(),
        )
        .await
        .expect("logs");
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some(MULTIPLEXED_STREAM)
    );
    let body = client::body_bytes(resp).await.expect("body");
    assert_eq!(&body[..], client::mux_frame(1, b"line\n").as_slice());
    assert_eq!(
        api_status(h.call(Method::GET, "/containers/c1/logs").await),
        (
            400,
            "must specify at least one of 'stdout' or 'stderr'".into()
        )
    );
    assert_eq!(
        api_status(
            h.call(Method::GET, "/containers/missing/logs?stdout=1")
                .await
        )
        .0,
        404
    );
    assert_eq!(
        h.fake.calls(),
        vec![
            "list true Some(2) true {\"status\": [\"running\"]}",
            "logs c1 false Some((1, 500000000)) Some((1735689600, 250000000)) Some(3)",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_stream_with_the_previous_sample() {
    let h = harness().await;
    let one = h
        .call(Method::GET, "/containers/c1/stats?stream=0&one-shot=1")
        .await
        .expect("one shot");
    let v: serde_json::Value = serde_json::from_str(&one.1).expect("json");
    assert_eq!((v["n"].as_i64(), v["prev"].is_null()), (Some(0), true));
    let resp = h
        .client
        .request(Method::GET, "/containers/c1/stats", None, client::empty())
        .await
        .expect("stream");
    let mut body = resp.into_body();
    let mut text = String::new();
    while text.matches('\n').count() < 2 {
        let chunk = tokio::time::timeout(WAIT, client::next_chunk(&mut body))
            .await
            .expect("in time")
            .expect("chunk")
            .expect("more");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines[0]["prev"], serde_json::Value::Null);
    assert_eq!(lines[1]["prev"], lines[0]["n"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_export_and_commit() {
    let h = harness().await;
    let resp = h
        .client
        .request(
            Method::HEAD,
            "/containers/c1/archive?path=/etc",
            None,
            client::empty(),
        )
        .await
        .expect("head");
    let stat = resp
        .headers()
        .get("x-docker-container-path-stat")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    assert_eq!(
        stat.as_deref(),
        Some(base64(br#"{"name":"/etc","size":3}"#).as_str())
    );
    let got = h
        .call(Method::GET, "/containers/c1/archive?path=/etc")
        .await
        .expect("get");
    assert_eq!(got, (200, "TAR".into()));
    assert_eq!(
        api_status(h.call(Method::GET, "/containers/c1/archive").await),
        (400, "bad parameter: path cannot be empty".into())
    );
    let resp = h
        .client
        .request(
            Method::PUT,
            "/containers/c1/archive?path=/tmp&noOverwriteDirNonDir=1",
            Some("application/x-tar"),
            client::from_reader(std::io::Cursor::new(b"tarball".to_vec())),
        )
        .await
        .expect("put");
    assert_eq!(resp.status(), 200);
    assert_eq!(
        h.call(Method::GET, "/containers/c1/export")
            .await
            .expect("export"),
        (200, "TAR".into())
    );
    assert_eq!(
        api_status(h.call(Method::GET, "/containers/broken/export").await),
        (500, "cannot export".into())
    );
    let committed = h
        .call_with(
            Method::POST,
            "/commit?container=c1&repo=localhost:5000/me/app:old&tag=v2&pause=0&changes=CMD+x&changes=ENV+a%3Db",
            Some(r#"{"Cmd":["sh"]}"#),
        )
        .await
        .expect("commit");
    assert_eq!(committed, (201, "{\"Id\":\"sha256:abc\"}\n".into()));
    let calls = h.fake.calls();
    assert_eq!(
        calls,
        vec![
            "put c1 /tmp true false tarball",
            "commit c1 Some(\"localhost:5000/me/app:v2\")   false [\"CMD x\", \"ENV a=b\"] Some(Object {\"Cmd\": Array [String(\"sh\")]})",
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_create_needs_a_command() {
    let h = harness().await;
    assert_eq!(
        api_status(
            h.call_with(Method::POST, "/containers/c1/exec", Some(r#"{"Cmd":[]}"#))
                .await
        ),
        (400, "No exec command specified".into())
    );
    assert_eq!(
        h.call_with(
            Method::POST,
            "/containers/c1/exec",
            Some(r#"{"Cmd":["ls"]}"#)
        )
        .await
        .expect("created"),
        (201, "{\"Id\":\"e1\"}\n".into())
    );
}

#[test]
fn times_as_clients_send_them() {
    assert_eq!(parse_time("since", "1700000000"), Ok((1_700_000_000, 0)));
    assert_eq!(parse_time("since", "1.000000001"), Ok((1, 1)));
    assert_eq!(parse_time("since", "1.5"), Ok((1, 500_000_000)));
    assert_eq!(parse_time("since", "1970-01-01T00:01:00+00:01"), Ok((0, 0)));
    assert_eq!(
        parse_time("since", "x").map_err(|e| (e.status, e.message)),
        Err((
            400,
            "invalid value for \"since\": invalid timestamp \"x\": invalid seconds \"x\": invalid syntax"
                .to_string()
        ))
    );
    assert!(parse_time("until", "1.2a").is_err());
}

#[test]
fn base64_matches_rfc_4648() {
    let cases = [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ];
    for (plain, encoded) in cases {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
}

#[test]
fn stream_types_by_version() {
    assert_eq!(stream_type(false, ApiVersion::v1(42)), MULTIPLEXED_STREAM);
    assert_eq!(stream_type(false, ApiVersion::v1(41)), RAW_STREAM);
    assert_eq!(stream_type(true, ApiVersion::v1(51)), RAW_STREAM);
}
