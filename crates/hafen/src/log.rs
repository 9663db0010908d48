//! Log lines in runc's formats, which engines driving an OCI runtime parse:
//! `time="…" level=error msg="…"` (text) or
//! `{"level":"error","msg":"…","time":"…"}` (json).

use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    /// logfmt-style text.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

struct RuncFormat(LogFormat);

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        } else {
            let _ = write!(self.0, " {}={value}", field.name());
        }
    }
}

/// Quotes a logfmt value when it needs it, as logrus does.
fn logfmt_value(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._/@^+".contains(c));
    if bare {
        value.to_string()
    } else {
        format!("{value:?}")
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "error",
        Level::WARN => "warning",
        Level::INFO => "info",
        Level::DEBUG | Level::TRACE => "debug",
    }
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl<S, N> FormatEvent<S, N> for RuncFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut message = Message(String::new());
        event.record(&mut message);
        let level = level_name(event.metadata().level());
        match self.0 {
            LogFormat::Json => {
                let line = serde_json::json!({ "level": level, "msg": message.0, "time": now() });
                writeln!(writer, "{line}")
            }
            LogFormat::Text => {
                writeln!(
                    writer,
                    "time=\"{}\" level={level} msg={}",
                    now(),
                    logfmt_value(&message.0)
                )
            }
        }
    }
}

/// Where log lines go.
#[derive(Debug)]
pub struct Logging {
    /// Whether a log file is in use (errors are then also printed plainly to
    /// stderr, as runc does).
    pub to_file: bool,
}

/// Installs the logger: to `file` (appending) or stderr, at debug level with
/// `debug`, else warnings and errors.
pub fn init(file: Option<&Path>, format: LogFormat, debug: bool) -> Logging {
    let level = if debug { Level::DEBUG } else { Level::WARN };
    let builder = tracing_subscriber::fmt()
        .event_format(RuncFormat(format))
        .with_max_level(level);
    if let Some(path) = file {
        if let Ok(f) = OpenOptions::new().create(true).append(true).open(path) {
            let _ = builder.with_writer(Mutex::new(f)).try_init();
            return Logging { to_file: true };
        }
    }
    let _ = builder.with_writer(std::io::stderr).try_init();
    Logging { to_file: false }
}

/// Installs the daemon's logger: text lines to stderr at `level`.
pub fn init_daemon(level: &str) -> Result<(), String> {
    let level = match level {
        "debug" => Level::DEBUG,
        "info" => Level::INFO,
        "warn" | "warning" => Level::WARN,
        "error" | "fatal" => Level::ERROR,
        other => {
            return Err(format!(
                "unknown log level {other:?}: use debug, info, warn or error"
            ));
        }
    };
    let _ = tracing_subscriber::fmt()
        .event_format(RuncFormat(LogFormat::Text))
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
    Ok(())
}

/// Writes an error record (to the log file, where engines look for it).
pub fn error(message: &str) {
    tracing::error!("{message}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quoting() {
        assert_eq!(logfmt_value("plain-value_1.2/x"), "plain-value_1.2/x");
        assert_eq!(logfmt_value("two words"), "\"two words\"");
        assert_eq!(logfmt_value("say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(logfmt_value(""), "\"\"");
    }
}
