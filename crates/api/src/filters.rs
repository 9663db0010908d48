//! The `filters` query parameter: JSON, either `{"key": {"value": true}}`
//! (what clients send) or the older `{"key": ["value"]}`.

use std::collections::BTreeMap;

use crate::ApiError;

/// Filters by key, each with its values.
pub type Filters = BTreeMap<String, Vec<String>>;

/// Parses a `filters` value (empty means none).
pub fn parse(text: &str) -> Result<Filters, ApiError> {
    if text.trim().is_empty() {
        return Ok(Filters::new());
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ApiError::internal(e.to_string()))?;
    let obj = value
        .as_object()
        .ok_or_else(|| ApiError::bad_request("invalid filter: expected a JSON object"))?;
    let mut out = Filters::new();
    for (key, v) in obj {
        let values: Vec<String> = match v {
            serde_json::Value::Object(m) => m
                .iter()
                .filter(|(_, b)| b.as_bool().unwrap_or(false))
                .map(|(k, _)| k.clone())
                .collect(),
            serde_json::Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => return Err(ApiError::bad_request(format!("invalid filter '{key}'"))),
        };
        out.insert(key.clone(), values);
    }
    Ok(out)
}

/// Encodes filters the way clients send them.
pub fn encode(filters: &Filters) -> String {
    let obj: serde_json::Map<String, serde_json::Value> = filters
        .iter()
        .map(|(k, vs)| {
            let inner: serde_json::Map<String, serde_json::Value> = vs
                .iter()
                .map(|v| (v.clone(), serde_json::Value::Bool(true)))
                .collect();
            (k.clone(), serde_json::Value::Object(inner))
        })
        .collect();
    serde_json::Value::Object(obj).to_string()
}

/// Refuses keys that are not in `allowed`.
pub fn only(filters: &Filters, allowed: &[&str]) -> Result<(), ApiError> {
    match filters.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::bad_request(format!("invalid filter '{k}'"))),
        None => Ok(()),
    }
}

/// Whether `labels` pass the `label` (`key` or `key=value`, all must
/// match) and `label!` (none may match) filters.
pub fn labels_match(filters: &Filters, labels: &BTreeMap<String, String>) -> bool {
    let hit = |w: &String| match w.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(w.as_str()),
    };
    filters.get("label").is_none_or(|ws| ws.iter().all(hit))
        && filters.get("label!").is_none_or(|ws| !ws.iter().any(hit))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_filters() {
        let labels = [
            ("a".to_string(), "b".to_string()),
            ("c".to_string(), String::new()),
        ]
        .into();
        let f = |t: &str| parse(t).unwrap_or_default();
        assert!(labels_match(&f(r#"{"label":["a=b","c"]}"#), &labels));
        assert!(!labels_match(&f(r#"{"label":["a=x"]}"#), &labels));
        assert!(!labels_match(&f(r#"{"label!":["a"]}"#), &labels));
        assert!(labels_match(&f(r#"{"label!":["z"]}"#), &labels));
    }

    #[test]
    fn both_forms_and_round_trip() {
        let a = parse(r#"{"dangling":{"true":true},"label":{"a=b":true,"c":true}}"#)
            .unwrap_or_default();
        let b = parse(r#"{"dangling":["true"],"label":["a=b","c"]}"#).unwrap_or_default();
        assert_eq!(a, b);
        assert_eq!(parse(&encode(&a)).unwrap_or_default(), a);
        assert!(parse("{nope").is_err());
        assert!(only(&a, &["dangling"]).is_err());
    }
}
