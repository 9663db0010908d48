//! Reading what `/proc` says about a process.

use std::io;

/// What `/proc/<pid>/stat` says about a process that matters to the runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessStat {
    /// The one-letter state (`R`, `S`, `D`, `Z`, `T`, ...).
    pub state: char,
    /// The parent's pid.
    pub ppid: i32,
    /// Start time in clock ticks since boot: with the pid, it names a process
    /// uniquely, even after its pid is reused.
    pub start_time: u64,
}

impl ProcessStat {
    /// Whether the process has ended (a zombie waiting to be reaped or dead).
    pub fn is_dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Reads `/proc/<pid>/stat`; `Ok(None)` if there is no such process.
pub fn stat(pid: i32) -> io::Result<Option<ProcessStat>> {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ESRCH) => {
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    parse_stat(&text).map(Some).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("malformed /proc/{pid}/stat"),
        )
    })
}

/// Parses the text of a `stat` file. The command name (field 2) may contain
/// spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat(text: &str) -> Option<ProcessStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // Field 3 is the state; field 4 ppid; field 22 starttime.
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    let start_time = fields.nth(17)?.parse().ok()?;
    Some(ProcessStat {
        state,
        ppid,
        start_time,
    })
}

/// The start time of the calling process's own pid `pid` as seen through
/// `/proc`, or `None` if it is gone.
pub fn start_time(pid: i32) -> io::Result<Option<u64>> {
    Ok(stat(pid)?.map(|s| s.start_time))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_with_spaces_and_parens() {
        let line = "42 (a (weird) name) S 7 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 123456 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let stat = parse_stat(line).unwrap();
        assert_eq!(
            stat,
            ProcessStat {
                state: 'S',
                ppid: 7,
                start_time: 123456
            }
        );
    }

    #[test]
    fn reads_our_own_process() {
        let me = std::process::id() as i32;
        let stat = stat(me).unwrap().unwrap();
        assert!(!stat.is_dead());
        assert!(stat.start_time > 0);
        assert_eq!(
            stat.ppid,
            rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get())
        );
    }

    #[test]
    fn a_missing_process_is_none() {
        // pid_max is at most 2^22, so this pid cannot exist.
        assert_eq!(stat(i32::MAX).unwrap(), None);
    }

    #[test]
    fn garbage_is_refused() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("1 (x) S"), None);
    }
}
