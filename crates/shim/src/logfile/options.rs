//! The json-file driver's `--log-opt`s, parsed and checked as dockerd
//! does (`daemon/logger/jsonfilelog.New` and `ValidateLogOpt`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::LogError;

/// Rotation size when the container sets no `max-size`: `10m`, which
/// dockerd's `units.FromHumanSize` reads as 10 000 000 bytes. hafen
/// rotates by default (dockerd does not unless `daemon.json` says so).
pub const DEFAULT_MAX_SIZE: u64 = 10_000_000;

/// Files kept when the container sets no `max-file`: the live one and two
/// rotated ones.
pub const DEFAULT_MAX_FILE: u32 = 3;

/// Where a json-file log rotates, and what it records with each entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogOptions {
    /// Largest size of one file in bytes before the next entry goes to a
    /// new one; 0 means unlimited (never rotate).
    pub max_size: u64,
    /// Files kept, the live one included (at least 1): `path`, `path.1`,
    /// … `path.{max_file-1}`.
    pub max_file: u32,
    /// Compress rotated files. hafen does not implement this: the writer
    /// refuses `true`.
    pub compress: bool,
    /// Container label names to record in each entry's `attrs`
    /// (`--log-opt labels=a,b`); see [`LogOptions::resolve_attrs`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Environment variable names to record in `attrs` (`--log-opt env=A,B`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// The `attrs` object written with every entry (empty: none written).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

impl Default for LogOptions {
    /// hafen's default: rotate at [`DEFAULT_MAX_SIZE`], keep
    /// [`DEFAULT_MAX_FILE`] files.
    fn default() -> Self {
        LogOptions {
            max_size: DEFAULT_MAX_SIZE,
            max_file: DEFAULT_MAX_FILE,
            compress: false,
            labels: Vec::new(),
            env: Vec::new(),
            attrs: BTreeMap::new(),
        }
    }
}

impl LogOptions {
    /// Parses a container's json-file `--log-opt`s.
    ///
    /// hafen's defaults ([`DEFAULT_MAX_SIZE`], [`DEFAULT_MAX_FILE`]) stand
    /// for the daemon-wide `log-opts` of dockerd's `daemon.json`, which
    /// dockerd merges key by key under the container's own options
    /// (`mergeAndVerifyLogConfig`): `max-file=5` alone keeps the default
    /// size, `max-size=1m` alone keeps the default file count.
    ///
    /// `max-size` takes dockerd's `units.FromHumanSize` syntax (decimal
    /// units: `k` = 1000; `10m`, `1.5g`, `100kb`, `10 MB`); it must come to
    /// at least one byte. `max-file` is an integer ≥ 1. `compress` is a Go
    /// boolean; `true` is refused (not implemented). `labels` and `env`
    /// name container labels and environment variables for `attrs`.
    /// `mode` and `max-buffer-size` belong to the daemon, not the driver,
    /// and are ignored here. `labels-regex`, `env-regex` and `tag` are
    /// refused as unsupported; any other key is an error worded as
    /// dockerd's.
    pub fn from_opts(opts: &BTreeMap<String, String>) -> Result<LogOptions, LogError> {
        let mut o = LogOptions::default();
        for (key, value) in opts {
            match key.as_str() {
                "max-size" => o.max_size = parse_max_size(value)?,
                "max-file" => o.max_file = parse_max_file(value)?,
                "compress" => o.compress = parse_go_bool(value)?,
                "labels" => o.labels = split_names(value),
                "env" => o.env = split_names(value),
                "mode" | "max-buffer-size" => {}
                "labels-regex" | "env-regex" | "tag" => {
                    return Err(LogError::UnsupportedOpt(key.clone()));
                }
                _ => return Err(LogError::UnknownOpt(key.clone())),
            }
        }
        if o.compress {
            if o.max_file < 2 || o.max_size == 0 {
                return Err(LogError::CompressWithoutRotation);
            }
            return Err(LogError::UnsupportedOpt("compress".to_string()));
        }
        Ok(o)
    }

    /// Fills [`attrs`](Self::attrs) from the container's labels and
    /// environment (`KEY=value` strings) as dockerd's
    /// `Info.ExtraAttributes` does: each name in `labels`/`env` that the
    /// container has becomes a key; environment values win over labels of
    /// the same name.
    pub fn resolve_attrs(&mut self, labels: &BTreeMap<String, String>, env: &[String]) {
        self.attrs.clear();
        for name in &self.labels {
            if let Some(v) = labels.get(name) {
                self.attrs.insert(name.clone(), v.clone());
            }
        }
        if self.env.is_empty() {
            return;
        }
        let mut vars = BTreeMap::new();
        for e in env {
            if let Some((k, v)) = e.split_once('=') {
                vars.insert(k, v);
            }
        }
        for name in &self.env {
            if let Some(v) = vars.get(name.as_str()) {
                self.attrs.insert(name.clone(), (*v).to_string());
            }
        }
    }
}

/// Comma-separated names, as dockerd splits them (empty names dropped).
fn split_names(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `max-size` as dockerd reads it: `units.FromHumanSize`, then positive.
fn parse_max_size(value: &str) -> Result<u64, LogError> {
    let n = from_human_size(value)?;
    if n == 0 {
        return Err(LogError::MaxSizeNotPositive);
    }
    Ok(n)
}

/// go-units' `FromHumanSize`: a decimal number, an optional single space,
/// and an optional case-insensitive suffix `b`, or `k`/`m`/`g`/`t`/`p`
/// followed by nothing, `b` or `ib` — all decimal (`1KiB` is 1000 bytes,
/// as in go-units). The product is truncated to whole bytes.
pub(crate) fn from_human_size(value: &str) -> Result<u64, LogError> {
    let invalid = || LogError::InvalidSize(value.to_string());
    let Some(sep) = value.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ') else {
        return Err(invalid());
    };
    let (num, suffix) = if value.as_bytes()[sep] == b' ' {
        (&value[..sep], &value[sep + 1..])
    } else {
        (&value[..=sep], &value[sep + 1..])
    };
    // Go's ParseFloat takes no surrounding space and no "inf"/"nan" here
    // (the number part ends in a digit or a dot).
    if num.starts_with(|c: char| c.is_whitespace()) || num.contains(' ') {
        return Err(invalid());
    }
    let size = parse_decimal(num).ok_or_else(invalid)?;
    if size < 0.0 {
        return Err(invalid());
    }
    let bad_suffix = || LogError::InvalidSuffix(suffix.to_ascii_lowercase());
    let multiplier: f64 = if suffix.is_empty() {
        1.0
    } else {
        if suffix.len() > 3 {
            return Err(bad_suffix());
        }
        let sfx = suffix.to_ascii_lowercase();
        let sfx = sfx.as_bytes();
        if sfx[0] == b'b' {
            if sfx.len() > 1 {
                return Err(bad_suffix());
            }
            1.0
        } else {
            let m = match sfx[0] {
                b'k' => 1e3,
                b'm' => 1e6,
                b'g' => 1e9,
                b't' => 1e12,
                b'p' => 1e15,
                _ => return Err(bad_suffix()),
            };
            match sfx.len() {
                2 if sfx[1] != b'b' => return Err(bad_suffix()),
                3 if &sfx[1..] != b"ib" => return Err(bad_suffix()),
                _ => {}
            }
            m
        }
    };
    let bytes = size * multiplier;
    // Go converts with int64(); beyond its range the result is garbage
    // (negative on amd64), which dockerd then rejects.
    if bytes >= 9_223_372_036_854_775_808.0 {
        return Err(LogError::MaxSizeNotPositive);
    }
    Ok(bytes as u64)
}

/// Exact powers of ten as `f64` (10^22 is the largest that is exact).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A decimal number (`12`, `1.5`, `.5`, `5.`, `2e3`, `+1`) as Go's
/// `strconv.ParseFloat` reads it, for the numbers a size is written with:
/// a mantissa below 2^53 and a power of ten within ±22, where one exact
/// division or multiplication gives the correctly rounded result
/// (Clinger's fast path) — the same `f64` Go gets, so `1.001k` is 1000
/// bytes in both. Larger values come out infinite (dockerd rejects them
/// too); anything else is `None`. This keeps `std`'s general float parser
/// (some 18 KB) out of the shim.
fn parse_decimal(text: &str) -> Option<f64> {
    let s = text.as_bytes();
    let mut i = 0;
    let negative = match s.first() {
        Some(b'-') => {
            i = 1;
            true
        }
        Some(b'+') => {
            i = 1;
            false
        }
        _ => false,
    };
    let mut mantissa: u64 = 0;
    let mut any_digit = false;
    let mut exp10: i64 = 0;
    let mut seen_dot = false;
    while let Some(&c) = s.get(i) {
        match c {
            b'0'..=b'9' => {
                any_digit = true;
                mantissa = mantissa.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
                if seen_dot {
                    exp10 -= 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => break,
        }
        i += 1;
    }
    if !any_digit {
        return None;
    }
    if let Some(b'e' | b'E') = s.get(i) {
        i += 1;
        let sign: i64 = match s.get(i) {
            Some(b'-') => {
                i += 1;
                -1
            }
            Some(b'+') => {
                i += 1;
                1
            }
            _ => 1,
        };
        let start = i;
        let mut e: i64 = 0;
        while let Some(&c) = s.get(i) {
            if !c.is_ascii_digit() {
                break;
            }
            e = (e * 10 + i64::from(c - b'0')).min(100_000);
            i += 1;
        }
        if i == start {
            return None;
        }
        exp10 += sign * e;
    }
    if i != s.len() {
        return None;
    }
    let value = if mantissa == 0 {
        0.0
    } else if mantissa > 1 << 53 {
        return None;
    } else if exp10 > 22 {
        f64::INFINITY
    } else if exp10 >= 0 {
        mantissa as f64 * POW10[exp10 as usize]
    } else if exp10 >= -22 {
        mantissa as f64 / POW10[exp10.unsigned_abs() as usize]
    } else {
        return None;
    };
    Some(if negative { -value } else { value })
}

/// `max-file` as dockerd reads it: `strconv.Atoi`, then at least 1.
fn parse_max_file(value: &str) -> Result<u32, LogError> {
    let n: i64 = value
        .parse()
        .map_err(|_| LogError::InvalidMaxFile(value.to_string()))?;
    if n < 1 {
        return Err(LogError::MaxFileTooSmall);
    }
    u32::try_from(n).map_err(|_| LogError::InvalidMaxFile(value.to_string()))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(value: &str) -> Result<bool, LogError> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(LogError::InvalidBool(value.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_rotate() {
        let o = LogOptions::from_opts(&BTreeMap::new()).expect("defaults");
        assert_eq!(o.max_size, DEFAULT_MAX_SIZE);
        assert_eq!(o.max_file, DEFAULT_MAX_FILE);
        assert!(!o.compress);
        assert_eq!(o, LogOptions::default());
        assert_eq!(from_human_size("10m").expect("10m"), DEFAULT_MAX_SIZE);
    }

    #[test]
    fn sizes_follow_go_units_from_human_size() {
        for (text, bytes) in [
            ("100", 100),
            ("1b", 1),
            ("1B", 1),
            ("1k", 1000),
            ("1K", 1000),
            ("1kb", 1000),
            ("1kB", 1000),
            ("1KiB", 1000),
            ("10m", 10_000_000),
            ("10M", 10_000_000),
            ("10MB", 10_000_000),
            ("10 MB", 10_000_000),
            ("1.5m", 1_500_000),
            ("2g", 2_000_000_000),
            ("1t", 1_000_000_000_000),
            ("1p", 1_000_000_000_000_000),
            ("0.5k", 500),
            ("1.0009k", 1000),
            // Go's float arithmetic: 1.001 × 1000 = 1000.999…
            ("1.001k", 1000),
            ("1.001m", 1_000_999),
            ("1.005k", 1004),
            ("32.", 32),
            (".5k", 500),
            ("+2k", 2000),
            ("2e3", 2000),
            ("2.5E-1k", 250),
            ("007", 7),
            ("0.000001m", 1),
        ] {
            assert_eq!(from_human_size(text).expect(text), bytes, "{text}");
        }
        for bad in [
            "",
            "m",
            "k10",
            "-1",
            "-1m",
            "1 m b",
            "  1m",
            "1  m",
            ".",
            "1..2",
            "0x10",
            "12345678901234567890123",
        ] {
            assert!(
                matches!(from_human_size(bad), Err(LogError::InvalidSize(_))),
                "{bad}: {:?}",
                from_human_size(bad)
            );
        }
        for bad in ["10x", "10mbb", "10bb", "10mx", "10mab", "10kic", "1e"] {
            assert!(
                matches!(from_human_size(bad), Err(LogError::InvalidSuffix(_))),
                "{bad}: {:?}",
                from_human_size(bad)
            );
        }
        assert_eq!(
            from_human_size("10x").map_err(|e| e.to_string()),
            Err("invalid suffix: 'x'".to_string())
        );
        assert_eq!(
            from_human_size("abc").map_err(|e| e.to_string()),
            Err("invalid size: 'abc'".to_string())
        );
    }

    #[test]
    fn max_size_and_max_file_errors_read_like_dockerd() {
        let err = |pairs: &[(&str, &str)]| {
            LogOptions::from_opts(&opts(pairs))
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(
            err(&[("max-size", "0")]),
            Err("max-size must be a positive number".into())
        );
        assert_eq!(
            err(&[("max-size", "0.4")]),
            Err("max-size must be a positive number".into())
        );
        assert_eq!(
            err(&[("max-size", "1e30")]),
            Err("max-size must be a positive number".into())
        );
        assert_eq!(
            err(&[("max-size", "9.3e18")]),
            Err("max-size must be a positive number".into())
        );
        assert_eq!(
            err(&[("max-size", "1e-30")]),
            Err("invalid size: '1e-30'".into())
        );
        assert_eq!(
            err(&[("max-file", "0")]),
            Err("max-file cannot be less than 1".into())
        );
        assert_eq!(
            err(&[("max-file", "-3")]),
            Err("max-file cannot be less than 1".into())
        );
        assert_eq!(
            err(&[("max-file", "three")]),
            Err("strconv.Atoi: parsing \"three\": invalid syntax".into())
        );
        assert_eq!(
            err(&[("max-file", "99999999999")]),
            Err("strconv.Atoi: parsing \"99999999999\": invalid syntax".into())
        );
        assert_eq!(
            err(&[("max-sise", "1m")]),
            Err("unknown log opt 'max-sise' for json-file log driver".into())
        );
        assert_eq!(
            err(&[("compress", "maybe")]),
            Err("strconv.ParseBool: parsing \"maybe\": invalid syntax".into())
        );
        assert_eq!(
            err(&[("compress", "true"), ("max-file", "1")]),
            Err(
                "compress cannot be true when max-file is less than 2 or max-size is not set"
                    .into()
            )
        );
        assert!(matches!(
            LogOptions::from_opts(&opts(&[("compress", "1")])),
            Err(LogError::UnsupportedOpt(k)) if k == "compress"
        ));
        for key in ["tag", "labels-regex", "env-regex"] {
            assert!(matches!(
                LogOptions::from_opts(&opts(&[(key, "x")])),
                Err(LogError::UnsupportedOpt(k)) if k == key
            ));
        }
    }

    #[test]
    fn explicit_values_merge_over_defaults() {
        let o = LogOptions::from_opts(&opts(&[("max-file", "5")])).expect("max-file alone");
        assert_eq!((o.max_size, o.max_file), (DEFAULT_MAX_SIZE, 5));
        let o = LogOptions::from_opts(&opts(&[("max-size", "1k")])).expect("max-size alone");
        assert_eq!((o.max_size, o.max_file), (1000, DEFAULT_MAX_FILE));
        let o = LogOptions::from_opts(&opts(&[
            ("max-size", "2m"),
            ("max-file", "+1"),
            ("compress", "false"),
            ("mode", "non-blocking"),
            ("max-buffer-size", "4m"),
        ]))
        .expect("all");
        assert_eq!((o.max_size, o.max_file, o.compress), (2_000_000, 1, false));
    }

    #[test]
    fn attrs_from_labels_and_env() {
        let mut o =
            LogOptions::from_opts(&opts(&[("labels", "app,,missing"), ("env", "STAGE,app")]))
                .expect("labels/env");
        assert_eq!(o.labels, ["app", "missing"]);
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("x".to_string(), "y".to_string()),
        ]
        .into();
        o.resolve_attrs(
            &labels,
            &[
                "STAGE=prod=1".to_string(),
                "app=env".to_string(),
                "BAD".to_string(),
            ],
        );
        let want: BTreeMap<String, String> = [
            ("STAGE".to_string(), "prod=1".to_string()),
            ("app".to_string(), "env".to_string()),
        ]
        .into();
        assert_eq!(o.attrs, want);
        let back: LogOptions =
            serde_json::from_str(&serde_json::to_string(&o).expect("ser")).expect("de");
        assert_eq!(back, o);
    }
}
