//! The API server: routes per resource over a unix socket, for any
//! [`Backend`].
//!
//! Every route answers with and without a version prefix (`/v1.41/…`). A
//! version outside 1.24–1.51 is refused with 400 as dockerd does; every
//! routed response carries `Api-Version`, `Docker-Experimental`, `Ostype`
//! and `Server`; an unknown path or method is `404 page not found`
//! without them. Backend calls block (files, the database), so they run on
//! the blocking pool.

mod bridge;
mod build_backend;
mod build_routes;
mod container_backend;
mod containers;
mod hijack;
mod images;
mod network_backend;
mod network_routes;
pub mod params;
mod system;
mod volume_backend;
mod volumes;

use std::future::Future;
use std::io::{Read, Write};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

pub use bridge::{BodyReader, BodyWriter};
pub use build_backend::BuildBackend;
pub use build_routes::options as build_options;
pub use container_backend::{
    AttachOptions, AttachStream, Attached, BoxFuture, ContainerBackend, ListOptions, LogsOptions,
    WaitCondition,
};
pub use network_backend::NetworkBackend;
pub use volume_backend::VolumeBackend;

use crate::ApiError;
use crate::filters::Filters;
use crate::models::{
    DeleteItem, Event, HistoryItem, ImageInspect, ImagePruneReport, ImageSummary, JsonMessage,
    Version,
};
use crate::version::{self, ApiVersion};

/// What `import` was asked for.
#[derive(Debug, Clone, Default)]
pub struct ImportRequest {
    /// `repo[:tag]`.
    pub repo: Option<String>,
    /// A tag given apart.
    pub tag: Option<String>,
    /// The commit message.
    pub message: Option<String>,
    /// Dockerfile instructions.
    pub changes: Vec<String>,
    /// `os[/arch]`.
    pub platform: Option<String>,
    /// `-` (the body) or a URL.
    pub source: String,
}

/// Events for a client: those that already happened, then live ones.
#[derive(Debug)]
pub struct EventFeed {
    /// Past events (oldest first).
    pub past: Vec<Event>,
    /// New events as they happen.
    pub live: tokio::sync::broadcast::Receiver<Event>,
}

/// What serves the API: the engine.
pub trait Backend:
    ContainerBackend + NetworkBackend + VolumeBackend + BuildBackend + Send + Sync + 'static
{
    /// `GET /version`.
    fn version(&self) -> Version;
    /// `GET /info`, as the newest version writes it.
    fn info(&self) -> serde_json::Value;
    /// `GET /images/json`.
    fn images(&self, all: bool, filters: &Filters) -> Result<Vec<ImageSummary>, ApiError>;
    /// `GET /images/{name}/json`.
    fn image_inspect(&self, name: &str) -> Result<ImageInspect, ApiError>;
    /// `GET /images/{name}/history`.
    fn image_history(&self, name: &str) -> Result<Vec<HistoryItem>, ApiError>;
    /// `POST /images/{name}/tag`.
    fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<(), ApiError>;
    /// `DELETE /images/{name}`.
    fn image_delete(
        &self,
        name: &str,
        force: bool,
        noprune: bool,
    ) -> Result<Vec<DeleteItem>, ApiError>;
    /// `POST /images/prune`.
    fn image_prune(&self, filters: &Filters) -> Result<ImagePruneReport, ApiError>;
    /// `POST /images/load`: progress and results go to `out`.
    fn image_load(
        &self,
        input: Box<dyn Read + Send>,
        quiet: bool,
        out: &mut dyn FnMut(JsonMessage),
    ) -> Result<(), ApiError>;
    /// Checks the names of a save before anything is written.
    fn image_save_check(&self, names: &[String]) -> Result<(), ApiError>;
    /// `GET /images/get`: the archive goes to `out`.
    fn image_save(&self, names: &[String], out: &mut dyn Write) -> Result<(), ApiError>;
    /// `POST /images/create?fromSrc=`: returns the image ID.
    fn image_import(
        &self,
        input: Box<dyn Read + Send>,
        request: &ImportRequest,
    ) -> Result<String, ApiError>;
    /// `GET /system/df`: the size of all layers and the images.
    fn disk_usage(&self) -> Result<(i64, Vec<ImageSummary>), ApiError>;
    /// `GET /events` since a time (ns).
    fn events(&self, since: Option<i64>) -> EventFeed;
}

/// The backend as handlers hold it.
pub(crate) type Shared = Arc<dyn Backend>;

/// Runs `f` on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("the daemon failed: {e}")))?
}

/// A JSON response, as dockerd writes it (compact, newline-terminated).
pub(crate) fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    body.push(b'\n');
    (status, [("content-type", "application/json")], body).into_response()
}

/// Marks a response that must not get the API headers.
#[derive(Clone, Copy)]
struct Unrouted;

async fn not_found() -> Response {
    let mut r = ApiError::not_found("page not found").into_response();
    r.extensions_mut().insert(Unrouted);
    r
}

/// The routes.
pub fn router(
    backend: Shared,
    server_name: &str,
) -> impl tower::Service<
    Request,
    Response = Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<Response, std::convert::Infallible>> + Send,
> + Clone
+ Send
+ 'static {
    let routes = Router::new()
        .merge(system::routes())
        .merge(images::routes())
        .merge(containers::routes())
        .merge(volumes::routes())
        .merge(network_routes::routes())
        .merge(build_routes::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(backend);
    let server = HeaderValue::from_str(server_name).unwrap_or(HeaderValue::from_static("hafen"));
    tower::ServiceBuilder::new()
        .map_request(strip_version)
        .map_response(move |mut r: Response| {
            if r.extensions().get::<Unrouted>().is_none()
                && r.extensions().get::<VersionRefused>().is_none()
            {
                let h = r.headers_mut();
                h.insert("api-version", HeaderValue::from_static(MAX_HEADER));
                h.insert("docker-experimental", HeaderValue::from_static("false"));
                h.insert("ostype", HeaderValue::from_static("linux"));
                h.insert("server", server.clone());
            } else if r.extensions().get::<VersionRefused>().is_some() {
                let h = r.headers_mut();
                h.insert("api-version", HeaderValue::from_static(MAX_HEADER));
                h.insert("ostype", HeaderValue::from_static("linux"));
                h.insert("server", server.clone());
            }
            r
        })
        .service(routes)
}

const MAX_HEADER: &str = "1.51";

/// A version outside the range: the request is answered with 400.
#[derive(Clone, Copy)]
struct VersionRefused;

/// The requested version, or why it is refused.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Requested {
    Ok(ApiVersion),
    TooOld(ApiVersion),
    TooNew(ApiVersion),
}

/// Takes `/vX.Y` off the path and records the version.
fn strip_version(mut req: Request) -> Request {
    let path = req.uri().path().to_string();
    let mut requested = Requested::Ok(version::MAX);
    if let Some(rest) = path.strip_prefix("/v") {
        let (ver, tail) = rest.split_once('/').unwrap_or((rest, ""));
        if let Some(v) = ApiVersion::parse(ver) {
            requested = if v < version::MIN {
                Requested::TooOld(v)
            } else if v > version::MAX {
                Requested::TooNew(v)
            } else {
                Requested::Ok(v)
            };
            let new_path = format!("/{tail}");
            let new_uri = match req.uri().query() {
                Some(q) => format!("{new_path}?{q}"),
                None => new_path,
            };
            if let Ok(uri) = new_uri.parse() {
                *req.uri_mut() = uri;
            }
        }
    }
    req.extensions_mut().insert(requested);
    req
}

/// The version of a request, or the 400 dockerd gives for one out of range.
pub(crate) fn api_version(requested: Requested) -> Result<ApiVersion, Box<Response>> {
    match requested {
        Requested::Ok(v) => Ok(v),
        Requested::TooNew(v) => {
            let mut r = ApiError::bad_request(format!(
                "client version {v} is too new. Maximum supported API version is {}",
                version::MAX
            ))
            .into_response();
            r.extensions_mut().insert(VersionRefused);
            Err(Box::new(r))
        }
        Requested::TooOld(v) => {
            let text = format!(
                "client version {v} is too old. Minimum supported API version is {}, please upgrade your client to a newer version\n",
                version::MIN
            );
            let mut r = (
                StatusCode::BAD_REQUEST,
                [
                    ("content-type", "text/plain; charset=utf-8"),
                    ("x-content-type-options", "nosniff"),
                ],
                text,
            )
                .into_response();
            r.extensions_mut().insert(VersionRefused);
            Err(Box::new(r))
        }
    }
}

/// The version of a request as a handler argument: refuses versions out
/// of range.
pub(crate) struct V(pub ApiVersion);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for V {
    type Rejection = Response;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        let requested = parts
            .extensions
            .get::<Requested>()
            .copied()
            .unwrap_or(Requested::Ok(version::MAX));
        api_version(requested).map(V).map_err(|r| *r)
    }
}

/// Serves the API on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::UnixListener,
    backend: Shared,
    server_name: &str,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let service = router(backend, server_name);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    loop {
        let mut stop = stop_rx.clone();
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return Ok(()),
        };
        let (stream, _) = match accepted {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("accept: {e}");
                continue;
            }
        };
        let service = service.clone();
        tokio::spawn(async move {
            let io = hyper_util::rt::TokioIo::new(stream);
            let hyper_service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut service = service.clone();
                    async move {
                        let req = req.map(Body::new);
                        tower::Service::call(&mut service, req).await
                    }
                });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(io, hyper_service)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::debug!("connection: {e}");
            }
        });
    }
}
