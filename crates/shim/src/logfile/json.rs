//! The bytes of one json-file entry, escaped exactly as dockerd escapes
//! them (`jsonlog.JSONLogs.MarshalJSONBuf` for the log text, Go's
//! `encoding/json` for the attributes), written by hand so that the shim
//! needs no JSON library on its write path.

use std::collections::BTreeMap;

use super::Stream;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Where encoded bytes go: a buffer, a byte counter, or a chunked file
/// writer.
pub(crate) trait Sink {
    /// Appends bytes.
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Counts bytes instead of storing them.
#[derive(Debug, Default)]
pub(crate) struct Counter(pub(crate) u64);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len() as u64;
    }
}

/// Which of Go's two escapers to mimic.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Style {
    /// dockerd's hand-written one for the `log` field: only `\n` and `\r`
    /// get short escapes.
    Log,
    /// `encoding/json` (Go ≥ 1.22), used for `attrs`: `\t`, `\b` and `\f`
    /// get short escapes too.
    Std,
}

/// The length of the valid UTF-8 sequence at the start of `s`, or `None`
/// when its first byte does not start one (Go's `utf8.DecodeRune` then
/// yields `RuneError` for that single byte).
fn utf8_len(s: &[u8]) -> Option<usize> {
    let (len, lo, hi) = match *s.first()? {
        0xC2..=0xDF => (2, 0x80, 0xBF),
        0xE0 => (3, 0xA0, 0xBF),
        0xE1..=0xEC | 0xEE..=0xEF => (3, 0x80, 0xBF),
        0xED => (3, 0x80, 0x9F),
        0xF0 => (4, 0x90, 0xBF),
        0xF1..=0xF3 => (4, 0x80, 0xBF),
        0xF4 => (4, 0x80, 0x8F),
        _ => return None,
    };
    let seq = s.get(..len)?;
    if !(lo..=hi).contains(&seq[1]) {
        return None;
    }
    if seq[2..].iter().any(|&b| b & 0xC0 != 0x80) {
        return None;
    }
    Some(len)
}

/// Writes the body of a JSON string (without quotes) for `s`.
fn escape_into(out: &mut impl Sink, s: &[u8], style: Style) {
    let mut start = 0;
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b < 0x80 {
            if b >= 0x20 && b != b'\\' && b != b'"' && b != b'<' && b != b'>' && b != b'&' {
                i += 1;
                continue;
            }
            out.put(&s[start..i]);
            match b {
                b'\\' | b'"' => out.put(&[b'\\', b]),
                b'\n' => out.put(b"\\n"),
                b'\r' => out.put(b"\\r"),
                b'\t' if style == Style::Std => out.put(b"\\t"),
                0x08 if style == Style::Std => out.put(b"\\b"),
                0x0C if style == Style::Std => out.put(b"\\f"),
                _ => out.put(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 0xF)],
                ]),
            }
            i += 1;
            start = i;
            continue;
        }
        match utf8_len(&s[i..]) {
            None => {
                out.put(&s[start..i]);
                out.put(b"\\ufffd");
                i += 1;
                start = i;
            }
            Some(3)
                if s[i] == 0xE2 && s[i + 1] == 0x80 && (s[i + 2] == 0xA8 || s[i + 2] == 0xA9) =>
            {
                // U+2028 and U+2029 end lines in JavaScript.
                out.put(&s[start..i]);
                out.put(if s[i + 2] == 0xA8 {
                    b"\\u2028"
                } else {
                    b"\\u2029"
                });
                i += 3;
                start = i;
            }
            Some(n) => i += n,
        }
    }
    out.put(&s[start..]);
}

/// `"attrs":{...},` as Go's `json.Marshal(map[string]string)` writes the
/// map (keys sorted), ready to go between `stream` and `time`; empty when
/// there are no attributes.
pub(crate) fn render_attrs(attrs: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::new();
    if attrs.is_empty() {
        return out;
    }
    out.put(b",\"attrs\":{");
    for (n, (k, v)) in attrs.iter().enumerate() {
        if n > 0 {
            out.put(b",");
        }
        out.put(b"\"");
        escape_into(&mut out, k.as_bytes(), Style::Std);
        out.put(b"\":\"");
        escape_into(&mut out, v.as_bytes(), Style::Std);
        out.put(b"\"");
    }
    out.put(b"}");
    out
}

/// The largest number of bytes [`encode_entry`] can produce for a line of
/// `line_len` bytes: six per input byte (`\u00XX`, or `\ufffd` for a lone
/// byte), the escaped newline, the fixed keys, the attributes and the time.
pub(crate) fn entry_len_bound(line_len: usize, attrs_len: usize) -> usize {
    line_len
        .saturating_mul(6)
        .saturating_add(attrs_len)
        .saturating_add(96)
}

/// Writes one entry, newline-terminated:
/// `{"log":"...","stream":"stdout"[,"attrs":{...}],"time":"..."}`.
///
/// `newline` appends `\n` to the log text (a complete line); partial
/// entries go without. `attrs` comes from [`render_attrs`], `time` is the
/// RFC3339Nano text.
pub(crate) fn encode_entry(
    out: &mut impl Sink,
    line: &[u8],
    newline: bool,
    stream: Stream,
    attrs: &[u8],
    time: &[u8],
) {
    // dockerd leaves out an empty `log` (`omitempty`).
    if line.is_empty() && !newline {
        out.put(b"{\"stream\":\"");
    } else {
        out.put(b"{\"log\":\"");
        escape_into(out, line, Style::Log);
        if newline {
            out.put(b"\\n");
        }
        out.put(b"\",\"stream\":\"");
    }
    out.put(stream.as_str().as_bytes());
    out.put(b"\"");
    out.put(attrs);
    out.put(b",\"time\":\"");
    out.put(time);
    out.put(b"\"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_escape(s: &[u8]) -> String {
        let mut out = Vec::new();
        escape_into(&mut out, s, Style::Log);
        String::from_utf8(out).expect("escaped JSON is UTF-8")
    }

    #[test]
    fn escapes_like_dockerd() {
        // Cases from moby's jsonlogbytes_test.go, and a few more.
        assert_eq!(
            log_escape(br#""A log line with \\""#),
            r#"\"A log line with \\\\\""#
        );
        assert_eq!(log_escape(b"A log line with \r"), r"A log line with \r");
        assert_eq!(
            log_escape(b"A log line with & < >"),
            r"A log line with \u0026 \u003c \u003e"
        );
        assert_eq!(log_escape("utf8 : 🚀 ψ ω β".as_bytes()), "utf8 : 🚀 ψ ω β");
        assert_eq!(log_escape("\u{2028} \u{2029}".as_bytes()), r"\u2028 \u2029");
        assert_eq!(log_escape(&[0xAF]), r"\ufffd");
        assert_eq!(log_escape(&[0x7F]), "\x7f");
        assert_eq!(
            log_escape(b"a\tb\x01\x08\x0c\x1f"),
            r"a\u0009b\u0001\u0008\u000c\u001f"
        );
        // Truncated and overlong sequences: one replacement per bad byte.
        assert_eq!(log_escape(&[b'x', 0xE2, 0x82]), r"x\ufffd\ufffd");
        assert_eq!(log_escape(&[0xC0, 0x80]), r"\ufffd\ufffd");
        assert_eq!(log_escape(&[0xED, 0xA0, 0x80]), r"\ufffd\ufffd\ufffd");
        assert_eq!(
            log_escape(&[0xF4, 0x90, 0x80, 0x80]),
            r"\ufffd\ufffd\ufffd\ufffd"
        );
        assert_eq!(log_escape("€ok".as_bytes()), "€ok");
    }

    #[test]
    fn attrs_use_go_std_escapes_and_sorted_keys() {
        let mut a = BTreeMap::new();
        a.insert("z".to_string(), "t\tb\u{8}".to_string());
        a.insert("a<".to_string(), "1".to_string());
        let r = String::from_utf8(render_attrs(&a)).expect("utf-8");
        assert_eq!(r, r#","attrs":{"a\u003c":"1","z":"t\tb\b"}"#);
        assert!(render_attrs(&BTreeMap::new()).is_empty());
    }

    #[test]
    fn bound_covers_worst_cases() {
        let attrs = br#","attrs":{"k":"v"}"#;
        let time = b"2026-11-22T08:41:02.123456789Z";
        for line in [
            vec![0xFFu8; 100],
            vec![0x01u8; 100],
            "\u{2028}".repeat(40).into_bytes(),
            Vec::new(),
        ] {
            let mut out = Vec::new();
            encode_entry(&mut out, &line, true, Stream::Stderr, attrs, time);
            assert!(out.len() <= entry_len_bound(line.len(), attrs.len()));
            let mut c = Counter::default();
            encode_entry(&mut c, &line, true, Stream::Stderr, attrs, time);
            assert_eq!(c.0, out.len() as u64);
        }
    }

    #[test]
    fn entry_layout_matches_dockerd() {
        let mut out = Vec::new();
        encode_entry(
            &mut out,
            b"hello",
            true,
            Stream::Stdout,
            b"",
            b"2026-11-22T08:41:02.123456789Z",
        );
        assert_eq!(
            out,
            b"{\"log\":\"hello\\n\",\"stream\":\"stdout\",\"time\":\"2026-11-22T08:41:02.123456789Z\"}\n"
        );
        out.clear();
        encode_entry(
            &mut out,
            b"",
            false,
            Stream::Stderr,
            b"",
            b"1970-01-01T00:00:00Z",
        );
        assert_eq!(
            out,
            b"{\"stream\":\"stderr\",\"time\":\"1970-01-01T00:00:00Z\"}\n"
        );
    }
}
