//! The client the `hafen` CLI uses: HTTP/1.1 over the daemon's unix
//! socket, the version negotiated with `HEAD /_ping` as the docker CLI
//! does.

use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response};

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
#[derive(Debug)]
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
        let mut builder = Request::builder()
            .method(method)
            .uri(format!("/v{}{path}", self.version))
            .header("host", "hafen")
            .header("user-agent", concat!("hafen/", env!("CARGO_PKG_VERSION")));
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        let req = builder
            .body(body)
            .map_err(|e| ClientError::Http(e.to_string()))?;
        let resp = self.send(req).await?;
        if resp.status().is_client_error() || resp.status().is_server_error() {
            let status = resp.status().as_u16();
            let bytes = body_bytes(resp).await?;
            let message = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes).trim().to_string());
            return Err(ClientError::Api { status, message });
        }
        Ok(resp)
    }

    /// GET a JSON document.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let resp = self.request(Method::GET, path, None, empty()).await?;
        let bytes = body_bytes(resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// A request whose JSON answer is decoded.
    pub async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
    ) -> Result<T> {
        let resp = self.request(method, path, None, empty()).await?;
        let bytes = body_bytes(resp).await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))
    }
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
