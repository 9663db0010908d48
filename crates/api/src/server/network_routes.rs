//! `/networks/…`.
//!
//! `create` and `prune` are valid network names too: `GET
//! /networks/create` inspects a network called `create`; `POST` picks the
//! action, as with dockerd.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use super::params::Params;
use super::{Shared, V, blocking, json};
use crate::models::{NetworkConnect, NetworkCreate, NetworkDisconnect};
use crate::{ApiError, filters};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/", get(list))
        .route(
            "/networks/{name}",
            get(inspect).delete(remove).post(post_action),
        )
        .route("/networks/{name}/connect", post(connect))
        .route("/networks/{name}/disconnect", post(disconnect))
}

/// A JSON body, as dockerd reads it: empty or invalid is a 400.
fn body<T: DeserializeOwned + Default>(bytes: &[u8], empty_ok: bool) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if empty_ok {
            return Ok(T::default());
        }
        return Err(ApiError::bad_request("invalid JSON: EOF"));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

async fn list(State(b): State<Shared>, _: V, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let f = filters::parse(p.get("filters").unwrap_or(""))?;
    let l = blocking(move || b.network_list(&f)).await?;
    Ok(json(StatusCode::OK, &l))
}

async fn inspect(
    State(b): State<Shared>,
    _: V,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let n = blocking(move || b.network_inspect(&name)).await?;
    Ok(json(StatusCode::OK, &n))
}

async fn remove(
    State(b): State<Shared>,
    _: V,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    blocking(move || b.network_delete(&name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn post_action(
    State(b): State<Shared>,
    _: V,
    Path(action): Path<String>,
    RawQuery(q): RawQuery,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    match action.as_str() {
        "create" => {
            let request: NetworkCreate = body(&bytes, false)?;
            let created = blocking(move || b.network_create(&request)).await?;
            Ok(json(StatusCode::CREATED, &created))
        }
        "prune" => {
            let p = Params::parse(q.as_deref());
            let f = filters::parse(p.get("filters").unwrap_or(""))?;
            let report = blocking(move || b.network_prune(&f)).await?;
            Ok(json(StatusCode::OK, &report))
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

async fn connect(
    State(b): State<Shared>,
    _: V,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: NetworkConnect = body(&bytes, false)?;
    blocking(move || b.network_connect(&name, &request)).await?;
    Ok(StatusCode::OK.into_response())
}

async fn disconnect(
    State(b): State<Shared>,
    _: V,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: NetworkDisconnect = body(&bytes, false)?;
    blocking(move || b.network_disconnect(&name, &request)).await?;
    Ok(StatusCode::OK.into_response())
}
