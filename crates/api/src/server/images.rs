//! `/images/…`.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::params::Params;
use super::{BodyReader, BodyWriter, ImportRequest, Shared, V, blocking, json};
use crate::models::{JsonMessage, SummaryUse, render_inspect, render_summary};
use crate::{ApiError, filters};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/images/json", get(list))
        .route("/images/get", get(save))
        .route("/images/load", post(load))
        .route("/images/create", post(create))
        .route("/images/prune", post(prune))
        .route(
            "/images/{*rest}",
            get(get_image).post(post_image).delete(delete_image),
        )
}

async fn list(
    State(b): State<Shared>,
    V(v): V,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let mut f = filters::parse(p.get("filters").unwrap_or(""))?;
    // The legacy `filter` parameter is a reference filter.
    if let Some(r) = p.get("filter").filter(|r| !r.is_empty()) {
        f.entry("reference".into()).or_default().push(r.to_string());
    }
    let all = p.bool("all");
    let shared = p.bool("shared-size");
    let images = blocking(move || b.images(all, &f)).await?;
    let out: Vec<serde_json::Value> = images
        .iter()
        .map(|i| {
            render_summary(
                i,
                v,
                SummaryUse::List {
                    shared_size: shared,
                },
            )
        })
        .collect();
    Ok(json(StatusCode::OK, &out))
}

async fn get_image(
    State(b): State<Shared>,
    V(v): V,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/json") {
        let name = name.to_string();
        let i = blocking(move || b.image_inspect(&name)).await?;
        return Ok(json(StatusCode::OK, &render_inspect(&i, v)));
    }
    if let Some(name) = rest.strip_suffix("/history") {
        let name = name.to_string();
        let h = blocking(move || b.image_history(&name)).await?;
        return Ok(json(StatusCode::OK, &h));
    }
    if let Some(name) = rest.strip_suffix("/get") {
        let _ = q;
        return save_names(b, vec![name.to_string()]).await;
    }
    Err(ApiError::not_found("page not found"))
}

async fn post_image(
    State(b): State<Shared>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    if let Some(name) = rest.strip_suffix("/tag") {
        let name = name.to_string();
        let repo = p.get("repo").unwrap_or("").to_string();
        let tag = p.get("tag").unwrap_or("").to_string();
        blocking(move || b.image_tag(&name, &repo, &tag)).await?;
        return Ok(StatusCode::CREATED.into_response());
    }
    if rest.ends_with("/push") {
        return Err(ApiError::internal(
            "push is not supported yet: hafen's registry client comes later",
        ));
    }
    Err(ApiError::not_found("page not found"))
}

async fn delete_image(
    State(b): State<Shared>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let (force, noprune) = (p.bool("force"), p.bool("noprune"));
    let items = blocking(move || b.image_delete(&name, force, noprune)).await?;
    Ok(json(StatusCode::OK, &items))
}

async fn prune(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let f = filters::parse(p.get("filters").unwrap_or(""))?;
    let report = blocking(move || b.image_prune(&f)).await?;
    Ok(json(StatusCode::OK, &report))
}

/// A JSON-message stream response fed from a blocking task.
pub(super) fn message_stream(
    work: impl FnOnce(&mut dyn FnMut(JsonMessage)) -> Result<(), ApiError> + Send + 'static,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    tokio::task::spawn_blocking(move || {
        let send = |m: &JsonMessage| {
            let mut line = serde_json::to_vec(m).unwrap_or_default();
            line.extend_from_slice(b"\r\n");
            let _ = tx.blocking_send(Bytes::from(line));
        };
        let mut out = |m: JsonMessage| send(&m);
        if let Err(e) = work(&mut out) {
            send(&JsonMessage::error(e.message));
        }
    });
    let stream = ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn load(State(b): State<Shared>, RawQuery(q): RawQuery, body: Body) -> Response {
    let p = Params::parse(q.as_deref());
    // dockerd's default when the client does not say.
    let quiet = p.bool_or("quiet", true);
    let input = BodyReader::new(body);
    message_stream(move |out| b.image_load(Box::new(input), quiet, out))
}

async fn create(
    State(b): State<Shared>,
    RawQuery(q): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    if p.get("fromImage").is_some_and(|f| !f.is_empty()) {
        return Err(ApiError::internal(
            "pulling images is not supported yet: hafen's registry client comes later",
        ));
    }
    let source = p.get("fromSrc").unwrap_or("").to_string();
    if source != "-" {
        return Err(ApiError::bad_request(format!(
            "importing from {source:?} is not supported: give the tarball in the request body (fromSrc=-)"
        )));
    }
    let request = ImportRequest {
        repo: p.get("repo").filter(|r| !r.is_empty()).map(str::to_string),
        tag: p.get("tag").filter(|r| !r.is_empty()).map(str::to_string),
        message: p
            .get("message")
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        changes: p.all("changes"),
        platform: p
            .get("platform")
            .filter(|r| !r.is_empty())
            .map(str::to_string),
        source,
    };
    let input = BodyReader::new(body);
    Ok(message_stream(move |out| {
        let id = b.image_import(Box::new(input), &request)?;
        out(JsonMessage::status(id));
        Ok(())
    }))
}

async fn save(State(b): State<Shared>, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let names = Params::parse(q.as_deref()).all("names");
    save_names(b, names).await
}

async fn save_names(b: Shared, names: Vec<String>) -> Result<Response, ApiError> {
    {
        let (b, names) = (b.clone(), names.clone());
        blocking(move || b.image_save_check(&names)).await?;
    }
    let (mut writer, rx) = BodyWriter::new();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = b.image_save(&names, &mut writer) {
            tracing::warn!("save failed while streaming: {e}");
        }
        let _ = std::io::Write::flush(&mut writer);
    });
    let stream = ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
    Ok((
        StatusCode::OK,
        [("content-type", "application/x-tar")],
        Body::from_stream(stream),
    )
        .into_response())
}
