//! Output as the docker CLI writes it: `--format` Go templates (with
//! Docker's functions and the `table` directive), aligned tables, human
//! sizes and durations.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::{Template, TemplateError, Value};

/// A template error (Docker: "template parsing error").
#[derive(Debug, thiserror::Error)]
#[error("template parsing error: {0}")]
pub struct FormatError(pub String);

fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::String(s) => s.to_string().into(),
        Value::List(l) => l.iter().map(to_json).collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (k.to_string(), to_json(v))).collect(),
        _ => serde_json::Value::Null,
    }
}

fn arg_str(name: &str, args: &[Value], i: usize) -> Result<String, TemplateError> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s.to_string()),
        Some(other) => Ok(format!("{other}")),
        None => Err(TemplateError::Exec(format!(
            "{name}: missing argument {}",
            i + 1
        ))),
    }
}

fn string(s: String) -> Value {
    Value::String(Arc::from(s))
}

/// Docker's template functions; `header` makes the text functions identity
/// (for table headers).
fn with_funcs(t: Template, header: bool) -> Template {
    let ident = |args: &[Value]| -> Result<Value, TemplateError> {
        Ok(args.first().cloned().unwrap_or(Value::Nil))
    };
    if header {
        return t
            .func("json", ident)
            .func("split", ident)
            .func("join", ident)
            .func("title", ident)
            .func("lower", ident)
            .func("upper", ident)
            .func("truncate", ident)
            .func("pad", pad);
    }
    t.func("json", |args: &[Value]| {
        let v = args.first().cloned().unwrap_or(Value::Nil);
        Ok(string(
            serde_json::to_string(&to_json(&v)).unwrap_or_default(),
        ))
    })
    .func("split", |args: &[Value]| {
        let (s, sep) = (arg_str("split", args, 0)?, arg_str("split", args, 1)?);
        Ok(Value::List(
            s.split(sep.as_str())
                .map(|p| string(p.to_string()))
                .collect(),
        ))
    })
    .func("join", |args: &[Value]| {
        let sep = arg_str("join", args, 1)?;
        let items: Vec<String> = match args.first() {
            Some(Value::List(l)) => l
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.to_string(),
                    other => format!("{other}"),
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(string(items.join(&sep)))
    })
    .func("title", |args: &[Value]| {
        let s = arg_str("title", args, 0)?;
        Ok(string(
            s.split(' ')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default()
                })
                .collect::<Vec<String>>()
                .join(" "),
        ))
    })
    .func("lower", |args: &[Value]| {
        Ok(string(arg_str("lower", args, 0)?.to_lowercase()))
    })
    .func("upper", |args: &[Value]| {
        Ok(string(arg_str("upper", args, 0)?.to_uppercase()))
    })
    .func("truncate", |args: &[Value]| {
        let s = arg_str("truncate", args, 0)?;
        let n = match args.get(1) {
            Some(Value::Int(i)) => usize::try_from(*i).unwrap_or(0),
            Some(Value::Uint(u)) => usize::try_from(*u).unwrap_or(0),
            _ => s.len(),
        };
        Ok(string(if s.len() >= n {
            s.chars().take(n).collect()
        } else {
            s
        }))
    })
    .func("pad", pad)
}

fn pad(args: &[Value]) -> Result<Value, TemplateError> {
    let s = arg_str("pad", args, 0)?;
    if s.is_empty() {
        return Ok(string(s));
    }
    let n = |i: usize| match args.get(i) {
        Some(Value::Int(v)) => usize::try_from(*v).unwrap_or(0),
        Some(Value::Uint(v)) => usize::try_from(*v).unwrap_or(0),
        _ => 0,
    };
    Ok(string(format!(
        "{}{s}{}",
        " ".repeat(n(1)),
        " ".repeat(n(2))
    )))
}

/// `\t` and `\n` written literally in a format become real ones.
fn unescape(format: &str) -> String {
    format.trim().replace("\\t", "\t").replace("\\n", "\n")
}

fn parse(src: &str, header: bool) -> Result<Template, FormatError> {
    with_funcs(Template::new(""), header)
        .parse(src)
        .map_err(|e| FormatError(e.to_string()))
}

/// A `--format` for a list.
#[derive(Debug)]
pub enum ListFormat {
    /// `table …`: a header and aligned rows.
    Table(String),
    /// A template per row, no header.
    Rows(String),
}

impl ListFormat {
    /// From a `--format` value and the command's default table.
    pub fn new(format: Option<&str>, default_table: &str) -> ListFormat {
        let default = || {
            ListFormat::Table(unescape(
                default_table
                    .trim()
                    .strip_prefix("table")
                    .unwrap_or(default_table),
            ))
        };
        match format.map(str::trim) {
            None | Some("") | Some("table") => default(),
            Some("json") => ListFormat::Rows("{{json .}}".into()),
            Some(f) => match f.strip_prefix("table") {
                Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                    ListFormat::Table(unescape(rest))
                }
                _ => ListFormat::Rows(unescape(f)),
            },
        }
    }

    /// Renders rows (each a map of field → text) with their headers.
    pub fn render(
        &self,
        rows: &[BTreeMap<String, String>],
        headers: &BTreeMap<&str, &str>,
    ) -> Result<String, FormatError> {
        let value = |row: &BTreeMap<String, String>| -> Value {
            Value::Map(Arc::new(
                row.iter()
                    .map(|(k, v)| (Arc::from(k.as_str()), string(v.clone())))
                    .collect(),
            ))
        };
        match self {
            ListFormat::Rows(src) => {
                let t = parse(src, false)?;
                let mut out = String::new();
                for row in rows {
                    out.push_str(
                        &t.execute_to_string(&value(row))
                            .map_err(|e| FormatError(e.to_string()))?,
                    );
                    out.push('\n');
                }
                Ok(out)
            }
            ListFormat::Table(src) => {
                let t = parse(src, false)?;
                let h = parse(src, true)?;
                let header_row: BTreeMap<String, String> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                let mut lines = vec![
                    h.execute_to_string(&value(&header_row))
                        .map_err(|e| FormatError(e.to_string()))?,
                ];
                for row in rows {
                    lines.push(
                        t.execute_to_string(&value(row))
                            .map_err(|e| FormatError(e.to_string()))?,
                    );
                }
                Ok(tabwrite(&lines, 10, 3))
            }
        }
    }
}

/// Renders one value with a template (`inspect`, `version`, `info`).
pub fn render_one(format: &str, data: &serde_json::Value) -> Result<String, FormatError> {
    let src = if format.trim() == "json" {
        "{{json .}}".to_string()
    } else {
        unescape(format)
    };
    let t = parse(&src, false)?;
    let v = gotmpl::to_value(data).map_err(|e| FormatError(e.to_string()))?;
    t.execute_to_string(&v)
        .map_err(|e| FormatError(e.to_string()))
}

/// Aligns tab-separated cells as Go's tabwriter does (cells end at a tab;
/// a line's last cell is not aligned): each column as wide as its widest
/// cell plus `padding`, at least `min_width`.
pub fn tabwrite(lines: &[String], min_width: usize, padding: usize) -> String {
    let split: Vec<Vec<&str>> = lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(|l| l.split('\t').collect())
        .collect();
    let columns = split
        .iter()
        .map(|c| c.len().saturating_sub(1))
        .max()
        .unwrap_or(0);
    let mut widths = vec![0usize; columns];
    for cells in &split {
        for (i, c) in cells.iter().enumerate().take(cells.len().saturating_sub(1)) {
            widths[i] = widths[i].max(c.chars().count() + padding).max(min_width);
        }
    }
    let mut out = String::new();
    for cells in &split {
        let last = cells.len().saturating_sub(1);
        for (i, c) in cells.iter().enumerate() {
            out.push_str(c);
            if i < last {
                out.push_str(&" ".repeat(widths[i].saturating_sub(c.chars().count())));
            }
        }
        out.push('\n');
    }
    out
}

/// Go's `%.<precision>g` of a number (no exponent for the sizes here).
fn g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i64;
    let decimals = (precision as i64 - 1 - magnitude).max(0) as usize;
    let text = format!("{v:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

/// Docker's decimal human size with `precision` significant digits
/// (`4.26MB` with 3, `4.262MB` with 4).
pub fn human_size(bytes: i64, precision: usize) -> String {
    let units = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    format!("{}{}", g(v, precision), units[i])
}

/// Docker's binary size (`15.5GiB`).
pub fn bytes_size(bytes: i64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1024.0 && i < units.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{}{}", g(v, 4), units[i])
}

/// Docker's `HumanDuration` of `secs` ago.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let minutes = s / 60;
    let hours = (s as f64 / 3600.0).round() as i64;
    if s < 1 {
        "Less than a second".into()
    } else if s == 1 {
        "1 second".into()
    } else if s < 60 {
        format!("{s} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", hours / 24 / 365)
    }
}

/// `… ago` for a Unix time.
pub fn since(created: i64) -> String {
    format!(
        "{} ago",
        human_duration(chrono::Utc::now().timestamp() - created)
    )
}

/// An ID shortened as Docker shows it (12 hex digits, no algorithm).
pub fn short_id(id: &str) -> String {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    hex.chars().take(12).collect()
}

/// Go's `time.Unix(t, 0).String()` in UTC: `2024-09-26 21:31:42 +0000 UTC`.
pub fn go_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_ids() {
        assert_eq!(human_size(1_982_429, 3), "1.98MB");
        assert_eq!(human_size(1_982_429, 4), "1.982MB");
        assert_eq!(human_size(0, 3), "0B");
        assert_eq!(human_size(999, 3), "999B");
        assert_eq!(human_size(1000, 3), "1kB");
        assert_eq!(human_size(4_261_550, 3), "4.26MB");
        assert_eq!(human_size(123_000_000, 3), "123MB");
        assert_eq!(bytes_size(16_642_998_272), "15.5GiB");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(3 * 3600), "3 hours");
        assert_eq!(human_duration(400 * 86400), "13 months");
        assert_eq!(short_id("sha256:e9576207f977e3456653"), "e9576207f977");
        assert_eq!(short_id("<missing>"), "<missing>");
    }

    #[test]
    fn tables_and_templates() {
        let rows = vec![BTreeMap::from([
            ("Repository".to_string(), "busybox".to_string()),
            ("Tag".to_string(), "latest".to_string()),
        ])];
        let headers = BTreeMap::from([("Repository", "REPOSITORY"), ("Tag", "TAG")]);
        let t = ListFormat::new(None, "table {{.Repository}}\\t{{.Tag}}");
        assert_eq!(
            t.render(&rows, &headers).unwrap_or_default(),
            "REPOSITORY   TAG\nbusybox      latest\n"
        );
        let j = ListFormat::new(Some("json"), "");
        assert_eq!(
            j.render(&rows, &headers).unwrap_or_default(),
            "{\"Repository\":\"busybox\",\"Tag\":\"latest\"}\n"
        );
        let custom = ListFormat::new(Some("{{.Repository | upper}}:{{.Tag}}"), "");
        assert_eq!(
            custom.render(&rows, &headers).unwrap_or_default(),
            "BUSYBOX:latest\n"
        );
        assert!(
            ListFormat::new(Some("{{.Repository"), "")
                .render(&rows, &headers)
                .is_err()
        );
    }
}
