//! `/_ping`, `/version`, `/info`, `/system/df`, `/events`.

use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::{Map, Value, json};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::params::Params;
use super::{Shared, V, blocking, json};
use crate::models::{Event, SummaryUse, render_summary};
use crate::{ApiError, ApiVersion, filters};

pub(super) fn routes() -> Router<Shared> {
    Router::new()
        .route("/_ping", get(ping).head(ping))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/system/df", get(df))
        .route("/events", get(events))
}

async fn ping(_: V) -> Response {
    (
        StatusCode::OK,
        [
            ("content-type", "text/plain; charset=utf-8"),
            ("cache-control", "no-cache, no-store, must-revalidate"),
            ("pragma", "no-cache"),
            ("builder-version", "1"),
            ("swarm", "inactive"),
        ],
        "OK",
    )
        .into_response()
}

async fn version(State(b): State<Shared>, _: V) -> Response {
    json(StatusCode::OK, &b.version())
}

/// `/info` for a client of version `v`.
fn render_info(mut info: Value, v: ApiVersion) -> Value {
    if let Some(o) = info.as_object_mut() {
        if v.before(44) {
            if let Some(Value::Object(rt)) = o.get_mut("Runtimes") {
                for r in rt.values_mut() {
                    if let Some(r) = r.as_object_mut() {
                        r.remove("status");
                    }
                }
            }
        }
        if v.before(46) {
            o.remove("Containerd");
        }
        if v.before(49) {
            o.remove("FirewallBackend");
            for k in ["ContainerdCommit", "RuncCommit", "InitCommit"] {
                if let Some(Value::Object(c)) = o.get_mut(k) {
                    let id = c.get("ID").cloned().unwrap_or(json!(""));
                    c.insert("Expected".into(), id);
                }
            }
        }
        if v.before(50) {
            o.remove("DiscoveredDevices");
            o.insert("BridgeNfIptables".into(), json!(false));
            o.insert("BridgeNfIp6tables".into(), json!(false));
        }
    }
    info
}

async fn info(State(b): State<Shared>, V(v): V) -> Result<Response, ApiError> {
    let info = blocking(move || Ok(b.info())).await?;
    Ok(json(StatusCode::OK, &render_info(info, v)))
}

async fn df(State(b): State<Shared>, V(v): V, RawQuery(q): RawQuery) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let types = p.all("type");
    for t in &types {
        if !matches!(t.as_str(), "container" | "image" | "volume" | "build-cache") {
            return Err(ApiError::bad_request(format!("unknown object type: {t}")));
        }
    }
    let want = |t: &str| types.is_empty() || types.iter().any(|x| x == t);
    let volumes = if want("volume") {
        let b = b.clone();
        Some(blocking(move || b.volume_usage()).await?)
    } else {
        None
    };
    let (layers, images) = blocking(move || b.disk_usage()).await?;
    let mut o = Map::new();
    o.insert("LayersSize".into(), json!(layers));
    o.insert(
        "Images".into(),
        if want("image") {
            json!(
                images
                    .iter()
                    .map(|i| render_summary(i, v, SummaryUse::DiskUsage))
                    .collect::<Vec<_>>()
            )
        } else {
            Value::Null
        },
    );
    o.insert(
        "Containers".into(),
        if want("container") {
            json!([])
        } else {
            Value::Null
        },
    );
    o.insert(
        "Volumes".into(),
        volumes.map_or(Value::Null, |vs| {
            Value::Array(vs.iter().map(super::volumes::render).collect())
        }),
    );
    o.insert(
        "BuildCache".into(),
        if want("build-cache") {
            json!([])
        } else {
            Value::Null
        },
    );
    if v.before(42) {
        o.insert("BuilderSize".into(), json!(0));
    }
    Ok(json(StatusCode::OK, &Value::Object(o)))
}

/// A `since`/`until` value: seconds with an optional fraction, in ns.
fn timestamp(text: &str) -> Option<i64> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    let nanos: i64 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Whether an event passes the filters.
fn matches(e: &Event, f: &filters::Filters) -> bool {
    let any = |key: &str, test: &dyn Fn(&str) -> bool| {
        f.get(key).is_none_or(|vs| vs.iter().any(|v| test(v)))
    };
    let name = e.actor.attributes.get("name").cloned().unwrap_or_default();
    any("type", &|v| v == e.kind)
        && any("event", &|v| v == e.action)
        && any("scope", &|v| v == e.scope)
        && any("image", &|v| {
            e.kind == "image" && (e.actor.id == v || name == v || name.split(':').next() == Some(v))
        })
        && any("container", &|v| {
            e.kind == "container" && (e.actor.id.starts_with(v) || name == v)
        })
        && any("label", &|v| match v.split_once('=') {
            Some((k, val)) => e.actor.attributes.get(k).is_some_and(|x| x == val),
            None => e.actor.attributes.contains_key(v),
        })
}

async fn events(
    State(b): State<Shared>,
    _: V,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let p = Params::parse(q.as_deref());
    let parse_time = |key: &str| -> Result<Option<i64>, ApiError> {
        match p.get(key).filter(|t| !t.is_empty()) {
            None => Ok(None),
            Some(t) => timestamp(t)
                .map(Some)
                .ok_or_else(|| ApiError::bad_request(format!("invalid value for {key}: {t:?}"))),
        }
    };
    let since = parse_time("since")?;
    let until = parse_time("until")?;
    if let (Some(s), Some(u)) = (since, until) {
        if u < s {
            return Err(ApiError::bad_request(format!(
                "`since` time ({}) cannot be after `until` time ({})",
                p.get("since").unwrap_or(""),
                p.get("until").unwrap_or("")
            )));
        }
    }
    let f = filters::parse(p.get("filters").unwrap_or(""))?;
    let mut feed = b.events(since);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let line = |e: &Event| {
        let mut l = serde_json::to_vec(e).unwrap_or_default();
        l.push(b'\n');
        Bytes::from(l)
    };
    tokio::spawn(async move {
        for e in feed
            .past
            .iter()
            .filter(|e| since.is_none_or(|s| e.time_nano >= s))
        {
            if until.is_some_and(|u| e.time_nano > u) {
                return;
            }
            if matches(e, &f) && tx.send(line(e)).await.is_err() {
                return;
            }
        }
        let deadline = until.map(|u| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as i64)
                .unwrap_or(0);
            std::time::Duration::from_nanos(u.saturating_sub(now).max(0) as u64)
        });
        let sleep =
            tokio::time::sleep(deadline.unwrap_or(std::time::Duration::from_secs(u32::MAX.into())));
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => return,
                _ = tx.closed() => return,
                e = feed.live.recv() => match e {
                    Ok(e) => {
                        if until.is_some_and(|u| e.time_nano > u) {
                            return;
                        }
                        if matches(&e, &f) && tx.send(line(&e)).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                },
            }
        }
    });
    let stream = ReceiverStream::new(rx).map(Ok::<_, std::io::Error>);
    Ok((
        StatusCode::OK,
        [("content-type", "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_fractions() {
        assert_eq!(timestamp("1700000000"), Some(1_700_000_000_000_000_000));
        assert_eq!(timestamp("1700000000.5"), Some(1_700_000_000_500_000_000));
        assert_eq!(
            timestamp("1700000000.000000001"),
            Some(1_700_000_000_000_000_001)
        );
        assert_eq!(timestamp("soon"), None);
    }
}
