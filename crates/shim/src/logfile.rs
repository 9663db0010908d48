//! Docker's json-file log format: writing with rotation, reading back.
//!
//! Each line of the file is one entry, as dockerd's json-file driver
//! writes it:
//!
//! ```text
//! {"log":"hello\n","stream":"stdout","time":"2026-11-22T08:41:02.123456789Z"}
//! ```
//!
//! The time is UTC with nanoseconds, trailing zeros trimmed (Go's
//! `RFC3339Nano`). A line longer than 16 KiB is split into entries of
//! 16 KiB, only the last ending in `\n`, all with the time of the first;
//! output that ends without a newline is written as such a partial entry
//! when its stream ends. With the `labels`/`env` log-opts an `"attrs"`
//! object goes between `stream` and `time`. The log text is escaped
//! byte for byte as dockerd escapes it (`<`, `>`, `&` as `\u003c`…,
//! invalid UTF-8 as `\ufffd`).
//!
//! Rotation uses dockerd's names: the live file `path`, then `path.1`
//! (newest rotated) up to `path.{max_file-1}`. hafen rotates before an
//! entry that would make the file exceed `max_size` (dockerd rotates
//! once a file has reached it), and takes the write bits off a file it
//! rotates away, which tells a [`Follower`] with a single `fstat`.
//!
//! [`LogWriter`] is the shim's (small, single-threaded); [`read`] and
//! [`Follower`] are the daemon's.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

mod clock;
mod json;
mod options;
mod reader;
mod writer;

pub use clock::Timestamp;
pub use options::{DEFAULT_MAX_FILE, DEFAULT_MAX_SIZE, LogOptions};
pub use reader::{Entry, Follower, Query, parse_entry, read, read_each, read_follow, timestamp};
pub use writer::LogWriter;

/// The longest line dockerd logs as one entry (its copier's buffer).
pub const MAX_LINE: usize = 16 * 1024;

/// A container output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Standard output (also a terminal's output).
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The name json-file records: `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// Errors of the json-file log. Option errors read like dockerd's.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A log-opt json-file does not know.
    #[error("unknown log opt '{0}' for json-file log driver")]
    UnknownOpt(String),
    /// A log-opt dockerd knows but hafen does not implement.
    #[error("log opt '{0}' is not supported by hafen's json-file log driver")]
    UnsupportedOpt(String),
    /// `max-size` is not a size.
    #[error("invalid size: '{0}'")]
    InvalidSize(String),
    /// `max-size` has an unknown unit.
    #[error("invalid suffix: '{0}'")]
    InvalidSuffix(String),
    /// `max-size` comes to less than one byte (or more than Go's int64).
    #[error("max-size must be a positive number")]
    MaxSizeNotPositive,
    /// `max-file` is not an integer.
    #[error("strconv.Atoi: parsing {0:?}: invalid syntax")]
    InvalidMaxFile(String),
    /// `max-file` is below 1.
    #[error("max-file cannot be less than 1")]
    MaxFileTooSmall,
    /// `compress` is not a boolean.
    #[error("strconv.ParseBool: parsing {0:?}: invalid syntax")]
    InvalidBool(String),
    /// `compress=true` without rotation.
    #[error("compress cannot be true when max-file is less than 2 or max-size is not set")]
    CompressWithoutRotation,
    /// The clock reads a year outside 0–9999, which RFC 3339 cannot
    /// express; the entry was dropped (as dockerd drops it).
    #[error("time.MarshalJSON: year outside of range [0,9999]")]
    TimeOutOfRange,
    /// A file operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done: `open`, `write`, `rename`, …
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
}

impl LogError {
    fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        LogError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

/// `path.{n}`, the name of the `n`th rotated file.
fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut s = OsString::from(path.as_os_str());
    s.push(".");
    s.push(n.to_string());
    PathBuf::from(s)
}

#[cfg(test)]
mod tests;
