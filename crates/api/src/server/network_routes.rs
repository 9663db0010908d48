//! `/networks/…`.
//!
//! `create` and `prune` are valid network names too: `GET
//! /networks/create` inspects a network called `create`; `POST` picks the
//! action, as with dockerd.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use super::containers::{check_json_type, decode_one};
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

/// A JSON body, as dockerd's `ReadJSON` reads it: an empty body is an
/// empty request (the backend then says what is missing), as is `null`; a
/// body must come as `application/json` and hold one JSON document.
fn body<T: DeserializeOwned + Default>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, ApiError> {
    check_json_type(headers, bytes.is_empty())?;
    if bytes.is_empty() {
        return Ok(T::default());
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "invalid JSON: got EOF while reading request body",
        ));
    }
    Ok(decode_one::<Option<T>>(bytes)?.unwrap_or_default())
}

async fn list(State(b): State<Shared>, _: V, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let f = filters::parse(p.get("filters").unwrap_or(""))?;
    let l = blocking(move || b.network_list(&f)).await?;
    Ok(json(StatusCode::OK, &l))
}

/// `verbose` and `scope` are accepted: there is one scope, `local`, and
/// nothing more to show.
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
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    match action.as_str() {
        "create" => {
            let request: NetworkCreate = body(&headers, &bytes)?;
            let created = blocking(move || b.network_create(&request)).await?;
            Ok(json(StatusCode::CREATED, &created))
        }
        "prune" => {
            let p = Params::parse(q.as_deref());
            let f = filters::parse(p.get("filters").unwrap_or(""))?;
            let mut report = blocking(move || b.network_prune(&f)).await?;
            // dockerd's list starts as nil: `null` when nothing went.
            report.networks_deleted = report.networks_deleted.filter(|d| !d.is_empty());
            Ok(json(StatusCode::OK, &report))
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

async fn connect(
    State(b): State<Shared>,
    _: V,
    Path(name): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: NetworkConnect = body(&headers, &bytes)?;
    blocking(move || b.network_connect(&name, &request)).await?;
    Ok(StatusCode::OK.into_response())
}

async fn disconnect(
    State(b): State<Shared>,
    _: V,
    Path(name): Path<String>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Response, ApiError> {
    let request: NetworkDisconnect = body(&headers, &bytes)?;
    blocking(move || b.network_disconnect(&name, &request)).await?;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Ok(v) = ct.parse() {
            h.insert("content-type", v);
        }
        h
    }

    #[test]
    fn bodies_read_as_dockerd_reads_them() {
        let json_ct = headers("application/json");
        let empty: NetworkCreate = body(&HeaderMap::new(), b"").expect("empty is no error");
        assert_eq!(empty, NetworkCreate::default());
        let null: NetworkConnect = body(&json_ct, b"null").expect("null is empty");
        assert_eq!(null, NetworkConnect::default());
        let c: NetworkCreate = body(
            &json_ct,
            br#"{"Name":"app","Driver":"bridge","CheckDuplicate":true}"#,
        )
        .expect("parses");
        assert_eq!((c.name.as_str(), c.check_duplicate), ("app", Some(true)));
        let d: NetworkDisconnect =
            body(&json_ct, br#"{"Container":"web","Force":true}"#).expect("parses");
        assert!(d.force);

        let eof = body::<NetworkCreate>(&json_ct, b"  \n").expect_err("only spaces");
        assert_eq!(eof.status, 400);
        assert_eq!(
            eof.message,
            "invalid JSON: got EOF while reading request body"
        );
        let bad = body::<NetworkCreate>(&json_ct, b"{\"Name\": 1}").expect_err("a number");
        assert_eq!(bad.status, 400);
        assert!(bad.message.starts_with("invalid JSON: "), "{}", bad.message);
        let two = body::<NetworkCreate>(&json_ct, b"{} {}").expect_err("two documents");
        assert_eq!(two.message, "unexpected content after JSON");
        let text = body::<NetworkCreate>(&headers("text/plain"), b"{}").expect_err("not JSON");
        assert_eq!(
            text.message,
            "unsupported Content-Type header (text/plain): must be 'application/json'"
        );
    }
}
