//! `/volumes/…`.
//!
//! `create` and `prune` are also valid volume names, so `/volumes/{name}`
//! takes every name and `POST` picks the action: `GET /volumes/prune`
//! inspects a volume named `prune`, as with dockerd.

use std::collections::BTreeMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;

use super::params::Params;
use super::{Shared, V, blocking, json};
use crate::models::{Volume, VolumeCreate, VolumeList};
use crate::{ApiError, filters};

pub(super) fn routes() -> Router<Shared> {
    Router::new().route("/volumes", get(list)).route(
        "/volumes/{name}",
        get(inspect).delete(remove).post(post_action),
    )
}

/// A volume as dockerd writes it: `Labels` and `Options` are null when
/// empty, `UsageData` only when measured.
pub(super) fn render(v: &Volume) -> Value {
    let mut value = serde_json::to_value(v).unwrap_or(Value::Null);
    if let Some(o) = value.as_object_mut() {
        for key in ["Labels", "Options"] {
            if o.get(key)
                .and_then(Value::as_object)
                .is_some_and(serde_json::Map::is_empty)
            {
                o.insert(key.into(), Value::Null);
            }
        }
    }
    value
}

fn render_list(l: &VolumeList) -> Value {
    serde_json::json!({
        "Volumes": l.volumes.iter().map(render).collect::<Vec<_>>(),
        "Warnings": if l.warnings.is_empty() { Value::Null } else { serde_json::json!(l.warnings) },
    })
}

async fn list(State(b): State<Shared>, _: V, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let f = filters::parse(p.get("filters").unwrap_or(""))?;
    let l = blocking(move || b.volume_list(&f)).await?;
    Ok(json(StatusCode::OK, &render_list(&l)))
}

async fn inspect(
    State(b): State<Shared>,
    _: V,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let v = blocking(move || b.volume_inspect(&name)).await?;
    Ok(json(StatusCode::OK, &render(&v)))
}

async fn remove(
    State(b): State<Shared>,
    _: V,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let force = Params::parse(q.as_deref()).bool("force");
    blocking(move || b.volume_delete(&name, force)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn post_action(
    State(b): State<Shared>,
    V(v): V,
    Path(action): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    match action.as_str() {
        "create" => {
            let request = create_request(&headers, &body)?;
            let created = blocking(move || b.volume_create(&request)).await?;
            Ok(json(StatusCode::CREATED, &render(&created)))
        }
        "prune" => {
            let p = Params::parse(q.as_deref());
            let mut f = filters::parse(p.get("filters").unwrap_or(""))?;
            // Before 1.42 a prune took every unused volume, not only
            // anonymous ones.
            if v.before(42) {
                f.entry("all".into()).or_default().push("true".into());
            }
            let report = blocking(move || b.volume_prune(&f)).await?;
            Ok(json(StatusCode::OK, &report))
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// The body of `POST /volumes/create`, read as dockerd reads it: empty is
/// an anonymous volume, field names match in any case, nulls are absent.
fn create_request(headers: &HeaderMap, body: &[u8]) -> Result<VolumeCreate, ApiError> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if body.is_empty() {
        return Ok(VolumeCreate::default());
    }
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/json" {
        return Err(ApiError::bad_request(format!(
            "unsupported Content-Type header ({content_type}): must be 'application/json'"
        )));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let mut request = VolumeCreate::default();
    let object = match value {
        Value::Object(o) => o,
        Value::Null => return Ok(request),
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid JSON: cannot read {} as a volume request",
                kind(&other)
            )));
        }
    };
    for (key, value) in object {
        let field = key.to_ascii_lowercase();
        if value.is_null() {
            continue;
        }
        match field.as_str() {
            "name" => request.name = string(&key, value)?,
            "driver" => request.driver = string(&key, value)?,
            "driveropts" => request.driver_opts = string_map(&key, value)?,
            "labels" => request.labels = string_map(&key, value)?,
            _ => {}
        }
    }
    Ok(request)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string(key: &str, v: Value) -> Result<String, ApiError> {
    match v {
        Value::String(s) => Ok(s),
        other => Err(ApiError::bad_request(format!(
            "invalid JSON: {key} must be a string, not {}",
            kind(&other)
        ))),
    }
}

fn string_map(key: &str, v: Value) -> Result<BTreeMap<String, String>, ApiError> {
    let Value::Object(o) = v else {
        return Err(ApiError::bad_request(format!(
            "invalid JSON: {key} must be an object of strings, not {}",
            kind(&v)
        )));
    };
    o.into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            other => Err(ApiError::bad_request(format!(
                "invalid JSON: {key}.{k} must be a string, not {}",
                kind(&other)
            ))),
        })
        .collect()
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
    fn create_bodies_read_as_dockerd_reads_them() {
        let json_ct = headers("application/json; charset=utf-8");
        assert_eq!(
            create_request(&HeaderMap::new(), b""),
            Ok(VolumeCreate::default())
        );
        let r = create_request(
            &json_ct,
            br#"{"name":"v1","DRIVER":"local","DriverOpts":{"type":"tmpfs"},"Labels":null,"ClusterVolumeSpec":{}}"#,
        )
        .expect("a request");
        assert_eq!(r.name, "v1");
        assert_eq!(r.driver, "local");
        assert_eq!(r.driver_opts.get("type").map(String::as_str), Some("tmpfs"));
        assert!(r.labels.is_empty());
        let bad = create_request(&headers("text/plain"), b"{}").expect_err("not JSON");
        assert_eq!(bad.status, 400);
        assert_eq!(
            bad.message,
            "unsupported Content-Type header (text/plain): must be 'application/json'"
        );
        assert_eq!(
            create_request(&json_ct, b"{\"Name\": 1}")
                .expect_err("number")
                .status,
            400
        );
        assert_eq!(
            create_request(&json_ct, b"{\"Labels\": {\"a\": 1}}")
                .expect_err("label value")
                .status,
            400
        );
        assert!(
            create_request(&json_ct, b"{\"Name\":\"a\" \"x\"}")
                .expect_err("broken")
                .message
                .starts_with("invalid JSON: ")
        );
    }

    #[test]
    fn empty_labels_and_options_are_null() {
        let mut v = Volume {
            name: "v".into(),
            ..Volume::default()
        };
        let r = render(&v);
        assert_eq!(r["Labels"], Value::Null);
        assert_eq!(r["Options"], Value::Null);
        assert!(r.get("UsageData").is_none());
        v.labels.insert("a".into(), String::new());
        assert_eq!(render(&v)["Labels"]["a"], "");
        let l = render_list(&VolumeList::default());
        assert_eq!(l.to_string(), r#"{"Volumes":[],"Warnings":null}"#);
    }
}
