//! `/containers/…`, `/exec/…` and `/commit`.
//!
//! Parameters are read as dockerd reads them (its messages for bad ones
//! included); what they mean is the backend's business, and so are the
//! error statuses it answers with. `attach` and `exec start` take over the
//! connection (`101 UPGRADED`, then [`hijack::relay`]).

use std::io::Write;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde::de::DeserializeOwned;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::params::Params;
use super::{
    AttachOptions, Attached, BodyReader, BodyWriter, ListOptions, LogsOptions, Shared, V,
    WaitCondition, blocking, hijack, json,
};
use crate::client::{MULTIPLEXED_STREAM, RAW_STREAM};
use crate::models::{ContainerCreate, ExecConfig, ExecStart, HostConfig, UpdateResponse};
use crate::{ApiError, ApiVersion, filters};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/containers/json",
            get(list).delete(|s: State<Shared>, v: V, q: RawQuery| remove_literal(s, v, q, "json")),
        )
        .route(
            "/containers/create",
            post(create)
                .delete(|s: State<Shared>, v: V, q: RawQuery| remove_literal(s, v, q, "create")),
        )
        .route(
            "/containers/prune",
            post(prune)
                .delete(|s: State<Shared>, v: V, q: RawQuery| remove_literal(s, v, q, "prune")),
        )
        .route("/containers/{id}", axum::routing::delete(remove))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}/update", post(update))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/changes", get(changes))
        .route("/containers/{id}/export", get(export))
        .route(
            "/containers/{id}/archive",
            get(archive_get).head(archive_head).put(archive_put),
        )
        .route("/containers/{id}/exec", post(exec_create))
        .route("/commit", post(commit))
        .route("/exec/{id}/start", post(exec_start))
        .route("/exec/{id}/resize", post(exec_resize))
        .route("/exec/{id}/json", get(exec_inspect))
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A non-empty parameter.
fn opt(p: &Params, key: &str) -> Option<String> {
    p.get(key).filter(|v| !v.is_empty()).map(str::to_string)
}

/// An integer parameter as Go's `strconv.Atoi` reads it (with its message).
fn int_param(p: &Params, key: &str) -> Result<Option<i64>, ApiError> {
    match p.get(key).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|e| {
            let why = match e.kind() {
                std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                    "value out of range"
                }
                _ => "invalid syntax",
            };
            ApiError::bad_request(format!("strconv.Atoi: parsing {v:?}: {why}"))
        }),
    }
}

/// A terminal dimension (`h`, `w`), as dockerd checks it.
fn dimension(p: &Params, key: &str, what: &str) -> Result<u16, ApiError> {
    let raw = p.get(key).unwrap_or("");
    let (digits, negative) = match raw.strip_prefix('-') {
        Some(rest) => (rest, true),
        None => (raw, false),
    };
    let parsed = if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        Err("invalid syntax")
    } else {
        match digits.parse::<u32>() {
            Ok(_) if negative => Err("value out of range"),
            Ok(n) => Ok(n),
            Err(_) => Err("value out of range"),
        }
    };
    match parsed {
        Ok(n) => Ok(u16::try_from(n).unwrap_or(u16::MAX)),
        Err(why) => Err(ApiError::bad_request(format!(
            "invalid resize {what} {raw:?}: {why}"
        ))),
    }
}

/// A request body read as dockerd's `ReadJSON` does: none is `None`; a
/// body must say it is JSON and hold exactly one JSON document.
async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
) -> Result<Option<T>, ApiError> {
    let bytes = axum::body::to_bytes(body, 64 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
    check_json_type(headers, bytes.is_empty())?;
    if bytes.is_empty() {
        return Ok(None);
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid JSON: got EOF while reading request body",
        ));
    }
    decode_one(&bytes).map(Some)
}

/// One JSON document and nothing after it.
pub(super) fn decode_one<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value =
        T::deserialize(&mut de).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    de.end()
        .map_err(|_| ApiError::bad_request("unexpected content after JSON"))?;
    Ok(value)
}

/// dockerd's `CheckForJSON`: a body must come as `application/json`.
pub(super) fn check_json_type(headers: &HeaderMap, empty_body: bool) -> Result<(), ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.is_empty() && empty_body {
        return Ok(());
    }
    let media = ct.split(';').next().unwrap_or("").trim();
    if media.is_empty() {
        return Err(ApiError::bad_request(format!(
            "malformed Content-Type header ({ct}): mime: no media type"
        )));
    }
    if !media.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::bad_request(format!(
            "unsupported Content-Type header ({ct}): must be 'application/json'"
        )));
    }
    Ok(())
}

// ---- create, list, inspect ------------------------------------------------

/// The fields of the container config: a create body without any of them
/// has no config, which dockerd refuses.
fn has_config(body: &serde_json::Map<String, serde_json::Value>) -> bool {
    body.keys()
        .any(|k| k != "HostConfig" && k != "NetworkingConfig")
}

/// `os[/arch[/variant]]`, as containerd's `platforms.Parse` accepts it
/// (the backend picks the platform itself; a malformed one is refused).
fn check_platform(platform: &str) -> Result<(), ApiError> {
    let parts: Vec<&str> = platform.split('/').collect();
    let ok = parts.len() <= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{platform:?}: unknown operating system or architecture: invalid argument"
        )))
    }
}

async fn create(
    State(b): State<Shared>,
    V(v): V,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let bytes = axum::body::to_bytes(body, 64 << 20)
        .await
        .map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
    check_json_type(&headers, bytes.is_empty())?;
    if !v.before(41) {
        if let Some(platform) = opt(&p, "platform") {
            check_platform(&platform)?;
        }
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("invalid JSON: EOF"));
    }
    let raw: serde_json::Value = decode_one(&bytes)?;
    match raw.as_object() {
        Some(o) if has_config(o) => {}
        _ => {
            return Err(ApiError::bad_request(
                "config cannot be empty in order to create a container",
            ));
        }
    }
    let mut request: ContainerCreate = serde_json::from_value(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    if request.host_config.pids_limit.is_some_and(|l| l <= 0) {
        // 0 and -1 (and any negative) mean no limit.
        request.host_config.pids_limit = None;
    }
    let name = opt(&p, "name");
    let created = blocking(move || b.container_create(name.as_deref(), request)).await?;
    Ok(json(StatusCode::CREATED, &created))
}

async fn list(State(b): State<Shared>, _: V, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let opts = ListOptions {
        all: p.bool("all"),
        limit: int_param(&p, "limit")?
            .filter(|l| *l > 0)
            .map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
        size: p.bool("size"),
        filters: filters::parse(p.get("filters").unwrap_or(""))?,
    };
    let list = blocking(move || b.container_list(&opts)).await?;
    Ok(json(StatusCode::OK, &list))
}

async fn inspect(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let size = Params::parse(q.as_deref()).bool("size");
    let c = blocking(move || b.container_inspect(&id, size)).await?;
    Ok(json(StatusCode::OK, &c))
}

// ---- lifecycle ------------------------------------------------------------

async fn start(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // A non-null JSON object is at least 7 bytes; chunked means unknown.
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if length > 7 || headers.contains_key(header::TRANSFER_ENCODING) {
        return Err(ApiError::bad_request(
            "starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24",
        ));
    }
    let started = blocking(move || b.container_start(&id)).await?;
    Ok(if started {
        no_content()
    } else {
        StatusCode::NOT_MODIFIED.into_response()
    })
}

/// `t` and (from 1.42) `signal` of stop and restart.
fn stop_params(p: &Params, v: ApiVersion) -> Result<(Option<i64>, Option<String>), ApiError> {
    let signal = if v.before(42) { None } else { opt(p, "signal") };
    Ok((int_param(p, "t")?, signal))
}

async fn stop(
    State(b): State<Shared>,
    V(v): V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (t, signal) = stop_params(&Params::parse(q.as_deref()), v)?;
    let stopped = blocking(move || b.container_stop(&id, t, signal.as_deref())).await?;
    Ok(if stopped {
        no_content()
    } else {
        StatusCode::NOT_MODIFIED.into_response()
    })
}

async fn restart(
    State(b): State<Shared>,
    V(v): V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let (t, signal) = stop_params(&Params::parse(q.as_deref()), v)?;
    blocking(move || b.container_restart(&id, t, signal.as_deref())).await?;
    Ok(no_content())
}

async fn kill(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let signal = opt(&Params::parse(q.as_deref()), "signal");
    blocking(move || b.container_kill(&id, signal.as_deref())).await?;
    Ok(no_content())
}

async fn pause(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || b.container_pause(&id)).await?;
    Ok(no_content())
}

async fn unpause(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || b.container_unpause(&id)).await?;
    Ok(no_content())
}

async fn remove(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    remove_named(b, id, q).await
}

/// `DELETE /containers/json` and the like: a container with that name.
async fn remove_literal(
    State(b): State<Shared>,
    _: V,
    RawQuery(q): RawQuery,
    name: &'static str,
) -> Result<Response, ApiError> {
    remove_named(b, name.to_string(), q).await
}

async fn remove_named(b: Shared, id: String, q: Option<String>) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let (force, volumes) = (p.bool("force"), p.bool("v"));
    if p.bool("link") {
        // hafen has no legacy links: the container must exist, and its own
        // name is not a link.
        blocking(move || b.container_inspect(&id, false)).await?;
        return Err(ApiError::internal(
            "Conflict, cannot remove the default link name of the container",
        ));
    }
    blocking(move || b.container_remove(&id, force, volumes)).await?;
    Ok(no_content())
}

async fn rename(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let name = Params::parse(q.as_deref())
        .get("name")
        .unwrap_or("")
        .to_string();
    if name.is_empty() {
        return Err(ApiError::bad_request(
            "Neither old nor new names may be empty",
        ));
    }
    blocking(move || b.container_rename(&id, &name)).await?;
    Ok(no_content())
}

async fn update(
    State(b): State<Shared>,
    V(v): V,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut update: HostConfig = read_json(&headers, body).await?.unwrap_or_default();
    if v.before(40) {
        update.pids_limit = None;
    }
    if update.pids_limit.is_some_and(|l| l <= 0) {
        // 0 and -1 (and any negative) mean no limit when updating.
        update.pids_limit = Some(0);
    }
    let warnings = blocking(move || b.container_update(&id, update)).await?;
    Ok(json(StatusCode::OK, &UpdateResponse { warnings }))
}

async fn wait(
    State(b): State<Shared>,
    V(v): V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    // Before 1.30 there are no conditions and the answer comes whole.
    let legacy = v.before(30);
    let condition = if legacy {
        WaitCondition::NotRunning
    } else {
        match p.get("condition").unwrap_or("") {
            "" | "not-running" => WaitCondition::NotRunning,
            "next-exit" => WaitCondition::NextExit,
            "removed" => WaitCondition::Removed,
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid condition: {other:?}"
                )));
            }
        }
    };
    let waiting = blocking(move || b.container_wait(&id, condition)).await?;
    if legacy {
        let answer = waiting.await;
        return Ok(json(StatusCode::OK, &answer));
    }
    // The status goes out now; the body when the wait ends.
    let body = futures_util::stream::once(async move {
        let mut line = serde_json::to_vec(&waiting.await).unwrap_or_default();
        line.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(line))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

// ---- attach, exec start ---------------------------------------------------

/// The media type of an attached stream: multiplexed without a terminal,
/// but said so only from 1.42, as dockerd does.
fn stream_type(tty: bool, v: ApiVersion) -> &'static str {
    if !tty && !v.before(42) {
        MULTIPLEXED_STREAM
    } else {
        RAW_STREAM
    }
}

/// Answers a hijacking request: `101` and the relay on the upgraded
/// connection, or, when the client did not ask to upgrade, the output as
/// a `200` stream.
fn hijack_response(req: &mut Request, attached: Attached, v: ApiVersion) -> Response {
    match req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() {
        Some(on_upgrade) => {
            let content_type = stream_type(attached.tty, v);
            tokio::spawn(async move {
                match on_upgrade.await {
                    Ok(upgraded) => {
                        hijack::relay(hyper_util::rt::TokioIo::new(upgraded), attached).await;
                    }
                    Err(e) => tracing::debug!("upgrading the connection: {e}"),
                }
            });
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
            h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
            r
        }
        None => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, RAW_STREAM)],
            hijack::output_body(attached),
        )
            .into_response(),
    }
}

async fn attach(
    State(b): State<Shared>,
    V(v): V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    mut req: Request,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let opts = AttachOptions {
        stdin: p.bool("stdin"),
        stdout: p.bool("stdout"),
        stderr: p.bool("stderr"),
        logs: p.bool("logs"),
        stream: p.bool("stream"),
    };
    let keys = opt(&p, "detachKeys");
    let attached = blocking(move || b.container_attach(&id, opts, keys.as_deref())).await?;
    Ok(hijack_response(&mut req, attached, v))
}

async fn exec_start(
    State(b): State<Shared>,
    V(v): V,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let headers = req.headers().clone();
    let body = std::mem::take(req.body_mut());
    let start: ExecStart = read_json(&headers, body).await?.unwrap_or_default();
    let console = start
        .console_size
        .as_deref()
        .filter(|_| start.tty && !v.before(42))
        .and_then(|s| match s {
            [h, w] if *h > 0 && *w > 0 => Some((*h, *w)),
            _ => None,
        });
    let (detach, tty) = (start.detach, start.tty);
    let started = {
        let b = b.clone();
        let id = id.clone();
        blocking(move || b.exec_start(&id, detach, tty)).await
    };
    let attached = match started {
        Ok(a) => a,
        // As dockerd: a process that cannot start is reported in the
        // stream, after the upgrade; its exit code says the rest.
        Err(e) if e.status == 400 && !detach && req.headers().contains_key("upgrade") => {
            let text = format!("{}\r\n", e.message).into_bytes();
            let prefix = if tty {
                text
            } else {
                let mut framed = crate::client::mux_frame(2, &text);
                framed.shrink_to_fit();
                framed
            };
            Attached {
                stream: super::AttachStream::Closed,
                tty,
                detach_keys: Vec::new(),
                prefix,
            }
        }
        Err(e) => return Err(e),
    };
    if let Some((h, w)) = console {
        // The size the client asked for at the start; the exec may have
        // ended already, which is not the client's error.
        let _ = blocking(move || b.exec_resize(&id, h, w)).await;
    }
    if detach {
        return Ok(StatusCode::OK.into_response());
    }
    Ok(hijack_response(&mut req, attached, v))
}

async fn resize(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let (h, w) = (dimension(&p, "h", "height")?, dimension(&p, "w", "width")?);
    blocking(move || b.container_resize(&id, h, w)).await?;
    Ok(StatusCode::OK.into_response())
}

async fn exec_resize(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let (h, w) = (dimension(&p, "h", "height")?, dimension(&p, "w", "width")?);
    blocking(move || b.exec_resize(&id, h, w)).await?;
    Ok(StatusCode::OK.into_response())
}

async fn exec_create(
    State(b): State<Shared>,
    V(v): V,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut config: ExecConfig = read_json(&headers, body).await?.unwrap_or_default();
    if config.cmd.as_ref().is_none_or(Vec::is_empty) {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    if v.before(42) {
        config.console_size = None;
    }
    let exec_id = blocking(move || b.exec_create(&id, config)).await?;
    Ok(json(
        StatusCode::CREATED,
        &serde_json::json!({ "Id": exec_id }),
    ))
}

async fn exec_inspect(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let e = blocking(move || b.exec_inspect(&id)).await?;
    Ok(json(StatusCode::OK, &e))
}

// ---- logs, stats, top, changes --------------------------------------------

/// A time bound of `logs`: Unix seconds with an optional fraction (what
/// clients send), or RFC 3339.
pub(crate) fn parse_time(key: &str, value: &str) -> Result<(i64, u32), ApiError> {
    match parse_unix(value) {
        Ok(t) => Ok(t),
        Err(why) => match chrono::DateTime::parse_from_rfc3339(value) {
            Ok(t) => Ok((t.timestamp(), t.timestamp_subsec_nanos())),
            Err(_) => Err(ApiError::bad_request(format!(
                "invalid value for {key:?}: invalid timestamp {value:?}: {why}"
            ))),
        },
    }
}

/// `seconds[.fraction]`, as dockerd's `ParseUnixTimestamp`.
fn parse_unix(value: &str) -> Result<(i64, u32), String> {
    let (secs, frac) = match value.split_once('.') {
        Some((s, f)) => (s, f),
        None => (value, ""),
    };
    let sec = secs.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("invalid seconds {secs:?}: {why}")
    })?;
    if frac.len() > 20 {
        return Err(format!(
            "invalid nanoseconds: length {} exceeds maximum 20",
            frac.len()
        ));
    }
    if let Some((i, c)) = frac.bytes().enumerate().find(|(_, c)| !c.is_ascii_digit()) {
        return Err(format!(
            "invalid nanoseconds: invalid character '{}' at position {i}",
            char::from(c)
        ));
    }
    let mut digits = frac.as_bytes()[..frac.len().min(9)].to_vec();
    digits.resize(9, b'0');
    let nanos = digits
        .iter()
        .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    Ok((sec, nanos))
}

async fn logs(
    State(b): State<Shared>,
    V(v): V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let (stdout, stderr) = (p.bool("stdout"), p.bool("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "must specify at least one of 'stdout' or 'stderr'",
        ));
    }
    let since = match opt(&p, "since") {
        Some(s) => Some(parse_time("since", &s)?),
        None => None,
    };
    let until = match opt(&p, "until").filter(|u| u != "0") {
        Some(u) => Some(parse_time("until", &u)?),
        None => None,
    };
    // "all", nothing or anything that is not a count: everything.
    let tail = p
        .get("tail")
        .and_then(|t| t.trim().parse::<i64>().ok())
        .and_then(|n| usize::try_from(n).ok());
    let opts = LogsOptions {
        follow: p.bool("follow"),
        stdout,
        stderr,
        since,
        until,
        timestamps: p.bool("timestamps"),
        tail,
    };
    let tty = {
        let (b, id) = (b.clone(), id.clone());
        blocking(move || b.container_logs_check(&id)).await?
    };
    let (mut writer, rx) = BodyWriter::new();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = b.container_logs(&id, &opts, &mut writer) {
            // In band, as dockerd does once the answer has started.
            let _ = writeln!(writer, "Error grabbing logs: {}", e.message);
        }
        let _ = writer.flush();
    });
    let stream = ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, stream_type(tty, v))],
        Body::from_stream(stream),
    )
        .into_response())
}

/// Whether a stats sample is the empty one of a container that does not
/// run (nothing to wait a second for).
fn empty_sample(sample: &serde_json::Value) -> bool {
    sample
        .get("read")
        .and_then(|r| r.as_str())
        .is_none_or(|r| r.starts_with("0001-01-01"))
}

fn json_line(value: &serde_json::Value) -> Bytes {
    let mut line = serde_json::to_vec(value).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

/// How often streamed stats are sampled.
const STATS_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

async fn stats(
    State(b): State<Shared>,
    V(v): V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let stream = p.bool_or("stream", true);
    let one_shot = !v.before(41) && p.bool("one-shot");
    let first = {
        let (b, id) = (b.clone(), id.clone());
        blocking(move || b.container_stats(&id, None)).await?
    };
    if !stream {
        if one_shot || empty_sample(&first) {
            return Ok(json(StatusCode::OK, &first));
        }
        // A second sample, so that the CPU figures have a base.
        tokio::time::sleep(STATS_INTERVAL).await;
        let second = blocking(move || b.container_stats(&id, Some(&first))).await?;
        return Ok(json(StatusCode::OK, &second));
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        let mut previous = first;
        if tx.send(json_line(&previous)).await.is_err() {
            return;
        }
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                _ = tokio::time::sleep(STATS_INTERVAL) => {}
            }
            let (b, id, prev) = (b.clone(), id.clone(), previous);
            let next = match blocking(move || b.container_stats(&id, Some(&prev))).await {
                Ok(next) => next,
                Err(e) => {
                    tracing::debug!("stats: {e}");
                    return;
                }
            };
            if tx.send(json_line(&next)).await.is_err() {
                return;
            }
            previous = next;
        }
    });
    let body = ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

async fn top(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let ps_args = opt(&Params::parse(q.as_deref()), "ps_args");
    let t = blocking(move || b.container_top(&id, ps_args.as_deref())).await?;
    Ok(json(StatusCode::OK, &t))
}

async fn changes(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = blocking(move || b.container_changes(&id)).await?;
    // dockerd answers `null` when nothing changed.
    if c.is_empty() {
        return Ok(json(StatusCode::OK, &serde_json::Value::Null));
    }
    Ok(json(StatusCode::OK, &c))
}

// ---- export, archive, commit, prune ---------------------------------------

/// A body the backend writes on a blocking thread. The answer waits for
/// the first bytes, so that an error before any (no such container, no
/// such path) still gets its status.
async fn lazy_stream(
    content_type: &'static str,
    extra: Option<(&'static str, HeaderValue)>,
    work: impl FnOnce(&mut dyn Write) -> Result<(), ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    let (mut writer, mut rx) = BodyWriter::new();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let result = work(&mut writer).and_then(|()| {
            writer
                .flush()
                .map_err(|e| ApiError::internal(e.to_string()))
        });
        drop(writer);
        let _ = done_tx.send(result);
    });
    let body = match rx.recv().await {
        Some(first) => {
            // Once bytes have gone out, a later failure can only cut the
            // stream short.
            tokio::spawn(async move {
                if let Ok(Err(e)) = done_rx.await {
                    tracing::warn!("a streamed answer failed: {e}");
                }
            });
            let rest = ReceiverStream::new(rx);
            Body::from_stream(
                futures_util::stream::once(async move { first })
                    .chain(rest)
                    .map(Ok::<_, std::io::Error>),
            )
        }
        None => {
            done_rx
                .await
                .map_err(|_| ApiError::internal("the daemon failed"))??;
            Body::empty()
        }
    };
    let mut r = (StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Some((name, value)) = extra {
        r.headers_mut().insert(name, value);
    }
    Ok(r)
}

async fn export(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    lazy_stream("application/octet-stream", None, move |out| {
        b.container_export(&id, out)
    })
    .await
}

/// Standard base64 with padding (the path-stat header).
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

const PATH_STAT: &str = "x-docker-container-path-stat";

fn archive_path(p: &Params) -> Result<String, ApiError> {
    opt(p, "path").ok_or_else(|| ApiError::bad_request("bad parameter: path cannot be empty"))
}

async fn path_stat(b: &Shared, id: &str, path: &str) -> Result<HeaderValue, ApiError> {
    let (b, id, path) = (b.clone(), id.to_string(), path.to_string());
    let stat = blocking(move || b.container_archive_stat(&id, &path)).await?;
    let encoded = base64(&serde_json::to_vec(&stat).unwrap_or_default());
    HeaderValue::from_str(&encoded).map_err(|e| ApiError::internal(e.to_string()))
}

async fn archive_head(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let path = archive_path(&Params::parse(q.as_deref()))?;
    let stat = path_stat(&b, &id, &path).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(PATH_STAT, stat);
    Ok(r)
}

async fn archive_get(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let path = archive_path(&Params::parse(q.as_deref()))?;
    let stat = path_stat(&b, &id, &path).await?;
    lazy_stream("application/x-tar", Some((PATH_STAT, stat)), move |out| {
        b.container_archive_get(&id, &path, out)
    })
    .await
}

async fn archive_put(
    State(b): State<Shared>,
    _: V,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    // First: a request refused below still reads the body (see BodyReader).
    let input = BodyReader::new(body);
    let p = Params::parse(q.as_deref());
    let path = archive_path(&p)?;
    let no_overwrite = p.bool("noOverwriteDirNonDir");
    let copy_uid_gid = p.bool("copyUIDGID");
    blocking(move || {
        b.container_archive_put(&id, &path, no_overwrite, copy_uid_gid, Box::new(input))
    })
    .await?;
    Ok(StatusCode::OK.into_response())
}

/// `repo` with `tag` in place of any tag it has (`None` without a repo).
fn commit_reference(repo: Option<String>, tag: Option<String>) -> Option<String> {
    let repo = repo?;
    Some(match tag {
        None => repo,
        Some(tag) => {
            let name_start = repo.rfind('/').map_or(0, |i| i + 1);
            let name = match repo[name_start..].rfind(':') {
                Some(i) => &repo[..name_start + i],
                None => repo.as_str(),
            };
            format!("{name}:{tag}")
        }
    })
}

async fn commit(
    State(b): State<Shared>,
    _: V,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let config: Option<serde_json::Value> = read_json(&headers, body)
        .await?
        .filter(|c: &serde_json::Value| !c.is_null());
    if config.as_ref().is_some_and(|c| !c.is_object()) {
        return Err(ApiError::bad_request(
            "invalid JSON: the container config must be an object",
        ));
    }
    let container = p.get("container").unwrap_or("").to_string();
    let reference = commit_reference(opt(&p, "repo"), opt(&p, "tag"));
    let comment = p.get("comment").unwrap_or("").to_string();
    let author = p.get("author").unwrap_or("").to_string();
    let pause = p.bool_or("pause", true);
    let changes = p.all("changes");
    let id = blocking(move || {
        b.container_commit(
            &container,
            reference.as_deref(),
            &comment,
            &author,
            pause,
            &changes,
            config,
        )
    })
    .await?;
    Ok(json(StatusCode::CREATED, &serde_json::json!({ "Id": id })))
}

async fn prune(
    State(b): State<Shared>,
    V(v): V,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    if v.before(25) {
        return Err(ApiError::bad_request(format!(
            "POST /containers/prune requires API version 1.25, but the Docker daemon API version is {v}"
        )));
    }
    let f = filters::parse(Params::parse(q.as_deref()).get("filters").unwrap_or(""))?;
    let report = blocking(move || b.container_prune(&f)).await?;
    Ok(json(StatusCode::OK, &report))
}

#[cfg(test)]
mod tests;
