//! The client the `hafen` CLI uses: HTTP/1.1 over the daemon's unix
//! socket, the version negotiated with `HEAD /_ping` as the docker CLI
//! does.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Body, Frame, Incoming};
use hyper::{Method, Request, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::ApiVersion;
use crate::version;

/// Client failures.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon answers on the socket.
    #[error("cannot connect to the daemon at unix://{path}: {source}: is it running?")]
    Connect {
        /// The socket.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The daemon answered with an error.
    #[error("Error response from daemon: {message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// Its message.
        message: String,
    },
    /// The connection broke.
    #[error("talking to the daemon: {0}")]
    Http(String),
    /// The daemon's answer is not what was expected.
    #[error("cannot read the daemon's answer: {0}")]
    Decode(String),
}

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// A request body.
pub type RequestBody = BoxBody<Bytes, std::io::Error>;

/// An empty body.
pub fn empty() -> RequestBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// A body read from a blocking reader (a file, stdin) on another thread.
pub fn from_reader(reader: impl Read + Send + 'static) -> RequestBody {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Frame<Bytes>>>(8);
    std::thread::spawn(move || {
        let mut reader = reader;
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            match reader.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(Ok(Frame::data(Bytes::from(buf)))).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    BoxBody::new(StreamBody::new(
        tokio_stream::wrappers::ReceiverStream::new(rx),
    ))
}

/// A client of one daemon.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
    version: ApiVersion,
}

impl Client {
    /// A client for the daemon on `socket` (not yet connected).
    pub fn new(socket: &Path) -> Client {
        Client {
            socket: socket.to_path_buf(),
            version: version::MAX,
        }
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The negotiated version.
    pub fn api_version(&self) -> ApiVersion {
        self.version
    }

    async fn send(&self, req: Request<RequestBody>) -> Result<Response<Incoming>> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: self.socket.display().to_string(),
                source,
            })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))
    }

    /// `HEAD /_ping`: checks the daemon is there and takes its version
    /// (never newer than this client's).
    pub async fn negotiate(&mut self) -> Result<ApiVersion> {
        let req = Request::builder()
            .method(Method::HEAD)
            .uri("/_ping")
            .header("host", "hafen")
            .body(empty())
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = self.send(req).await?;
        let server = resp
            .headers()
            .get("api-version")
            .and_then(|v| v.to_str().ok())
            .and_then(ApiVersion::parse)
            .unwrap_or(version::MIN);
        self.version = server.min(version::MAX);
        Ok(self.version)
    }

    /// Sends a request to `/v<version><path>`; an error status becomes
    /// [`ClientError::Api`].
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: RequestBody,
    ) -> Result<Response<Incoming>> {
        self.request_with(method, path, content_type, &[], body)
            .await
    }

    /// [`Client::request`] with more headers.
    pub async fn request_with(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        headers: &[(&str, String)],
        body: RequestBody,
    ) -> Result<Response<Incoming>> {
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("/v{}{path}", self.version))
            .header("host", "hafen")
            .header("user-agent", concat!("hafen/", env!("CARGO_PKG_VERSION")));
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        for (k, v) in headers {
            builder = builder.header(*k, v.as_str());
        }
        let req = builder
            .body(body)
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = self.send(req).await?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            return Err(api_error(resp).await);
        }
        Ok(resp)
    }

    /// Sends a request that takes over the connection (`attach`, `exec
    /// start`): with `Connection: Upgrade` and `Upgrade: tcp`, and `body`
    /// (JSON) if given. The daemon answers `101 Switching Protocols` (or,
    /// like old dockerd, `200` with a raw stream that only reads); an error
    /// status becomes [`ClientError::Api`] as for [`Client::request`].
    pub async fn hijack(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Hijacked> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| ClientError::Connect {
                path: self.socket.display().to_string(),
                source,
            })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.with_upgrades().await;
        });
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("/v{}{path}", self.version))
            .header("host", "hafen")
            .header("user-agent", concat!("hafen/", env!("CARGO_PKG_VERSION")))
            .header(hyper::header::CONNECTION, "Upgrade")
            .header(hyper::header::UPGRADE, "tcp");
        let body = match body {
            Some(json) => {
                builder = builder.header(hyper::header::CONTENT_TYPE, "application/json");
                Full::new(Bytes::from(json))
                    .map_err(|never| match never {})
                    .boxed()
            }
            None => empty(),
        };
        let req = builder
            .body(body)
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let status = resp.status();
        if status.is_client_error() || status.is_server_error() {
            return Err(api_error(resp).await);
        }
        let content_type = resp
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let inner = if status == hyper::StatusCode::SWITCHING_PROTOCOLS {
            let upgraded = hyper::upgrade::on(resp)
                .await
                .map_err(|e| ClientError::Http(e.to_string()))?;
            HijackedInner::Upgraded(hyper_util::rt::TokioIo::new(upgraded))
        } else if status.is_success() {
            HijackedInner::ReadOnly(BodyReader::new(resp.into_body()))
        } else {
            return Err(ClientError::Decode(format!(
                "unexpected status {status} for a hijacked connection"
            )));
        };
        Ok(Hijacked {
            content_type,
            inner,
        })
    }

    /// GET a JSON document.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.request(Method::GET, path, None, empty()).await?;
        let bytes = body_bytes(resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// A request (with a JSON body if given) whose JSON answer is decoded.
    pub async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let resp = match body {
            Some(json) => {
                self.request(
                    method,
                    path,
                    Some("application/json"),
                    from_reader(std::io::Cursor::new(json)),
                )
                .await?
            }
            None => self.request(method, path, None, empty()).await?,
        };
        let bytes = body_bytes(resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

/// The error an error response stands for: its JSON `message`, or its
/// text.
async fn api_error(resp: Response<Incoming>) -> ClientError {
    let status = resp.status().as_u16();
    let bytes = match body_bytes(resp).await {
        Ok(bytes) => bytes,
        Err(e) => return e,
    };
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
    ClientError::Api { status, message }
}

/// The whole body of a response.
pub async fn body_bytes(resp: Response<Incoming>) -> Result<Bytes> {
    resp.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| ClientError::Http(e.to_string()))
}

/// Reads a response body chunk by chunk.
pub async fn next_chunk(body: &mut Incoming) -> Result<Option<Bytes>> {
    loop {
        match body.frame().await {
            None => return Ok(None),
            Some(Err(e)) => return Err(ClientError::Http(e.to_string())),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    return Ok(Some(data));
                }
            }
        }
    }
}

/// Percent-encodes a query value.
pub fn encode(value: &str) -> String {
    percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The media type of a raw stream (the container has a terminal).
pub const RAW_STREAM: &str = "application/vnd.docker.raw-stream";
/// The media type of a multiplexed stream (8-byte frame headers; see
/// [`demultiplex`]).
pub const MULTIPLEXED_STREAM: &str = "application/vnd.docker.multiplexed-stream";

/// A connection the daemon took over after [`Client::hijack`]: reads give
/// the container's output, writes go to its input, and
/// [`AsyncWriteExt::shutdown`] closes the input (half-close) while the
/// output goes on.
#[derive(Debug)]
pub struct Hijacked {
    content_type: Option<String>,
    inner: HijackedInner,
}

#[derive(Debug)]
enum HijackedInner {
    /// `101`: both ways.
    Upgraded(hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>),
    /// `200`: the response body, output only.
    ReadOnly(BodyReader),
}

impl Hijacked {
    /// The response's `Content-Type`: [`RAW_STREAM`],
    /// [`MULTIPLEXED_STREAM`] or, from old daemons, something else or
    /// nothing.
    pub fn content_type(&self) -> Option<&str> {
        self.content_type.as_deref()
    }

    /// Whether the output is multiplexed: the daemon said so, or it said
    /// nothing and `tty` is false (what old daemons meant).
    pub fn is_multiplexed(&self, tty: bool) -> bool {
        match self.content_type.as_deref() {
            Some(MULTIPLEXED_STREAM) => true,
            Some(RAW_STREAM) => false,
            _ => !tty,
        }
    }

    /// Whether input can be sent (the daemon upgraded the connection rather
    /// than answering `200`).
    pub fn is_writable(&self) -> bool {
        matches!(self.inner, HijackedInner::Upgraded(_))
    }

    /// The upgraded connection itself (`None` for a read-only `200`
    /// answer).
    pub fn into_upgraded(self) -> Option<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>> {
        match self.inner {
            HijackedInner::Upgraded(io) => Some(io),
            HijackedInner::ReadOnly(_) => None,
        }
    }
}

fn read_only_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::BrokenPipe,
        "the daemon did not upgrade the connection: input cannot be sent",
    )
}

impl AsyncRead for Hijacked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().inner {
            HijackedInner::Upgraded(io) => Pin::new(io).poll_read(cx, buf),
            HijackedInner::ReadOnly(body) => Pin::new(body).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Hijacked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match &mut self.get_mut().inner {
            HijackedInner::Upgraded(io) => Pin::new(io).poll_write(cx, buf),
            HijackedInner::ReadOnly(_) => Poll::Ready(Err(read_only_error())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().inner {
            HijackedInner::Upgraded(io) => Pin::new(io).poll_flush(cx),
            HijackedInner::ReadOnly(_) => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match &mut self.get_mut().inner {
            HijackedInner::Upgraded(io) => Pin::new(io).poll_shutdown(cx),
            HijackedInner::ReadOnly(_) => Poll::Ready(Ok(())),
        }
    }
}

/// A response body as a tokio [`AsyncRead`] (e.g. to [`demultiplex`] a
/// `logs` answer).
#[derive(Debug)]
pub struct BodyReader {
    body: Incoming,
    pending: Bytes,
    done: bool,
}

impl BodyReader {
    /// Reads `body`.
    pub fn new(body: Incoming) -> BodyReader {
        BodyReader {
            body,
            pending: Bytes::new(),
            done: false,
        }
    }
}

impl AsyncRead for BodyReader {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.pending.is_empty() {
                let n = this.pending.len().min(buf.remaining());
                buf.put_slice(&this.pending.split_to(n));
                return Poll::Ready(Ok(()));
            }
            if this.done {
                return Poll::Ready(Ok(()));
            }
            match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => this.done = true,
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Err(std::io::Error::other(e)));
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.pending = data;
                    }
                }
            }
        }
    }
}

/// Copies a multiplexed stream (Docker's frames: a stream byte — 0 stdin,
/// 1 stdout, 2 stderr, 3 a daemon error —, three zero bytes, a big-endian
/// u32 length, then that many bytes) to `stdout` and `stderr` until it
/// ends, flushing after each frame. Stdin frames go to `stdout`, as
/// docker does; an error frame ends the copy with its text as the error. A
/// stream cut off inside a frame ends quietly, as with docker's `stdcopy`.
pub async fn demultiplex<R, O, E>(
    reader: &mut R,
    stdout: &mut O,
    stderr: &mut E,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin + ?Sized,
    O: AsyncWrite + Unpin + ?Sized,
    E: AsyncWrite + Unpin + ?Sized,
{
    let mut header = [0u8; 8];
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        let mut filled = 0;
        while filled < header.len() {
            let n = reader.read(&mut header[filled..]).await?;
            if n == 0 {
                return Ok(());
            }
            filled += n;
        }
        let mut remaining =
            u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
        let stream = header[0];
        if stream > 3 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unknown stream {stream} in a multiplexed stream"),
            ));
        }
        let mut message = Vec::new();
        while remaining > 0 {
            let want = remaining.min(buf.len());
            let n = reader.read(&mut buf[..want]).await?;
            if n == 0 {
                break;
            }
            remaining -= n;
            match stream {
                0 | 1 => stdout.write_all(&buf[..n]).await?,
                2 => stderr.write_all(&buf[..n]).await?,
                _ => message.extend_from_slice(&buf[..n]),
            }
        }
        if stream == 3 {
            return Err(std::io::Error::other(
                String::from_utf8_lossy(&message).trim_end().to_string(),
            ));
        }
        match stream {
            2 => stderr.flush().await?,
            _ => stdout.flush().await?,
        }
        if remaining > 0 {
            return Ok(());
        }
    }
}

/// One frame of a multiplexed stream: the 8-byte header for `stream` (1
/// stdout, 2 stderr) and `data`.
pub fn mux_frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(8 + data.len());
    frame.extend_from_slice(&[stream, 0, 0, 0]);
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&data[..len as usize]);
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn demultiplex_splits_the_streams() {
        let mut input = mux_frame(1, b"out1 ");
        input.extend(mux_frame(2, b"err"));
        input.extend(mux_frame(0, b"in"));
        input.extend(mux_frame(1, b""));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        demultiplex(&mut input.as_slice(), &mut out, &mut err)
            .await
            .expect("demultiplexed");
        assert_eq!(out, b"out1 in");
        assert_eq!(err, b"err");
    }

    #[tokio::test]
    async fn demultiplex_reports_daemon_errors_and_bad_streams() {
        let mut input = mux_frame(1, b"x");
        input.extend(mux_frame(3, b"oops\n"));
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let e = demultiplex(&mut input.as_slice(), &mut out, &mut err)
            .await
            .expect_err("an error frame");
        assert_eq!(e.to_string(), "oops");
        assert_eq!(out, b"x");
        let bad = [9u8, 0, 0, 0, 0, 0, 0, 1, b'z'];
        let e = demultiplex(&mut &bad[..], &mut out, &mut err)
            .await
            .expect_err("an unknown stream");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn demultiplex_ends_quietly_on_a_cut_stream() {
        let mut input = mux_frame(1, b"whole");
        input.extend(&mux_frame(2, b"partial")[..10]);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        demultiplex(&mut input.as_slice(), &mut out, &mut err)
            .await
            .expect("a cut stream is not an error");
        assert_eq!(out, b"whole");
        assert_eq!(err, b"pa");
    }
}
