//! `POST /build` (the classic builder's protocol: the context tar in the
//! body, progress as JSON messages) and `POST /build/prune`.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::json;

use super::images::message_stream;
use super::params::Params;
use super::{BodyReader, Shared, V, blocking, json};
use crate::ApiError;
use crate::models::BuildOptions;

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/build", post(build))
        .route("/build/prune", post(prune))
}

/// A JSON object of strings from the query (`buildargs`, `labels`).
fn json_map<T: serde::de::DeserializeOwned>(
    p: &Params,
    key: &str,
) -> Result<BTreeMap<String, T>, ApiError> {
    match p.get(key).filter(|v| !v.is_empty()) {
        None => Ok(BTreeMap::new()),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid {key}: {e}"))),
    }
}

/// The build options of a query, as dockerd reads them.
pub fn options(q: Option<&str>) -> Result<BuildOptions, ApiError> {
    let p = Params::parse(q);
    let opt = |k: &str| p.get(k).filter(|v| !v.is_empty()).map(str::to_string);
    let cache_from = match p.get("cachefrom").filter(|v| !v.is_empty()) {
        None => Vec::new(),
        Some(text) => serde_json::from_str(text)
            .map_err(|e| ApiError::bad_request(format!("invalid cachefrom: {e}")))?,
    };
    let version = opt("version").unwrap_or_else(|| "1".into());
    if version != "1" {
        return Err(ApiError::bad_request(format!(
            "builder version {version:?} is not supported: hafen speaks the classic builder protocol (version 1); run the docker CLI with DOCKER_BUILDKIT=0"
        )));
    }
    Ok(BuildOptions {
        tags: p.all("t").into_iter().filter(|t| !t.is_empty()).collect(),
        dockerfile: opt("dockerfile").unwrap_or_else(|| "Dockerfile".into()),
        quiet: p.bool("q"),
        no_cache: p.bool("nocache"),
        pull: p.bool("pull"),
        build_args: json_map(&p, "buildargs")?,
        labels: json_map(&p, "labels")?,
        target: opt("target"),
        network: opt("networkmode"),
        platform: opt("platform"),
        cache_from,
        remote: opt("remote"),
        outputs: opt("outputs"),
        version,
        context_dir: opt("hafen-context"),
        context_id: opt("hafen-context-id"),
        secrets: BTreeMap::new(),
    })
}

/// The secrets header.
pub const SECRETS_HEADER: &str = "x-hafen-build-secrets";

fn secrets(headers: &HeaderMap) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(v) = headers.get(SECRETS_HEADER) else {
        return Ok(BTreeMap::new());
    };
    let text = percent_encoding::percent_decode(v.as_bytes()).decode_utf8_lossy();
    serde_json::from_str(&text)
        .map_err(|e| ApiError::bad_request(format!("invalid {SECRETS_HEADER}: {e}")))
}

async fn build(
    State(b): State<Shared>,
    _: V,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    // First: a request refused below still reads the body.
    let input = BodyReader::new(body);
    let opts = match options(q.as_deref()).and_then(|mut o| {
        o.secrets = secrets(&headers)?;
        Ok(o)
    }) {
        Ok(o) => o,
        Err(e) => return axum::response::IntoResponse::into_response(e),
    };
    message_stream(move |out| b.build(opts, Box::new(input), out))
}

async fn prune(State(b): State<Shared>, _: V, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let all = Params::parse(q.as_deref()).bool("all");
    let (freed, ids) = blocking(move || b.build_prune(all)).await?;
    Ok(json(
        StatusCode::OK,
        &json!({"CachesDeleted": ids, "SpaceReclaimed": freed}),
    ))
}
