//! `GET /containers/{id}/top`: the container's processes as `ps` shows
//! them, as dockerd does it (`daemon/top_unix.go`): `ps` runs on the host
//! with the given arguments (`-ef` by default) and the process IDs of the
//! container (`-q`, dropped if `ps` refuses it with those arguments), and
//! only the rows whose PID column names a process of the container are kept.

use std::process::Command;

use hafen_api::models::TopResponse;

/// Why `top` failed (dockerd answers 500 for each).
#[derive(Debug, thiserror::Error)]
pub enum TopError {
    /// `ps` arguments that would rename another column to `PID`.
    #[error("specifying \"{key}={value}\" is not allowed")]
    NotAllowed {
        /// The column.
        key: String,
        /// The header it was given.
        value: String,
    },
    /// `ps` failed: the first line of what it said.
    #[error("ps: {0}")]
    Ps(String),
    /// The output has no `PID` column (`ps -o comm`).
    #[error("Couldn't find PID field in ps output")]
    NoPidColumn,
    /// A PID column entry that is not a number.
    #[error("Unexpected pid '{0}': strconv.Atoi: parsing {0:?}: invalid syntax")]
    UnexpectedPid(String),
}

/// Splits on ASCII white space only, as dockerd does (a Unicode space can be
/// part of a command line).
fn fields_ascii(s: &str) -> Vec<&str> {
    s.split(['\t', '\n', '\x0c', '\r', ' '])
        .filter(|f| !f.is_empty())
        .collect()
}

/// Refuses `col=PID…` for any column but `pid` (dockerd's
/// `validatePSArgs`: the pattern `\s+([^\s]*)=\s*(PID[^\s]*)`).
fn validate_ps_args(args: &str) -> Result<(), TopError> {
    let is_space = |b: u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let bytes = args.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // `\s+`
        if !is_space(bytes[i]) {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < bytes.len() && is_space(bytes[j]) {
            j += 1;
        }
        // `([^\s]*)=`: the key runs to the last `=` before the next space
        // (the regexp's star is greedy and may not cross a space).
        let key_start = j;
        let mut word_end = key_start;
        while word_end < bytes.len() && !is_space(bytes[word_end]) {
            word_end += 1;
        }
        let mut matched = None;
        for eq in (key_start..word_end).rev().filter(|&e| bytes[e] == b'=') {
            // `\s*(PID[^\s]*)`
            let mut v = eq + 1;
            while v < bytes.len() && is_space(bytes[v]) {
                v += 1;
            }
            if args[v..].starts_with("PID") {
                let mut value_end = v;
                while value_end < bytes.len() && !is_space(bytes[value_end]) {
                    value_end += 1;
                }
                matched = Some((&args[key_start..eq], &args[v..value_end], value_end));
                break;
            }
        }
        match matched {
            Some((key, value, end)) => {
                if key != "pid" {
                    return Err(TopError::NotAllowed {
                        key: key.to_string(),
                        value: value.to_string(),
                    });
                }
                i = end;
            }
            None => i = j,
        }
    }
    Ok(())
}

/// Appends a row, joining the fields past the last title into the last
/// column (a command line with spaces).
fn append_row(out: &mut TopResponse, fields: &[&str]) {
    let columns = out.titles.len();
    let row = if columns > 0 && fields.len() >= columns {
        let mut row: Vec<String> = fields[..columns - 1]
            .iter()
            .map(|f| f.to_string())
            .collect();
        row.push(fields[columns - 1..].join(" "));
        row
    } else {
        fields.iter().map(|f| f.to_string()).collect()
    };
    out.processes.push(row);
}

/// Keeps the rows of `output` whose PID is one of `pids` (and the thread
/// rows, PID `-`, that follow a kept row).
fn parse_ps_output(output: &str, pids: &[i32]) -> Result<TopResponse, TopError> {
    let mut lines = output.split('\n');
    let mut out = TopResponse {
        titles: fields_ascii(lines.next().unwrap_or(""))
            .into_iter()
            .map(str::to_string)
            .collect(),
        processes: Vec::new(),
    };
    let pid_index = out
        .titles
        .iter()
        .position(|t| t == "PID")
        .ok_or(TopError::NoPidColumn)?;
    let mut previous_kept = false;
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let fields = fields_ascii(line);
        let Some(&pid) = fields.get(pid_index) else {
            previous_kept = false;
            continue;
        };
        if pid == "-" {
            if previous_kept {
                append_row(&mut out, &fields);
            }
            continue;
        }
        let p: i32 = pid
            .parse()
            .map_err(|_| TopError::UnexpectedPid(pid.to_string()))?;
        previous_kept = pids.contains(&p);
        if previous_kept {
            append_row(&mut out, &fields);
        }
    }
    Ok(out)
}

/// `ps` with these arguments; its output, or the first line it said on
/// failure.
fn run_ps(args: &[&str]) -> Result<String, String> {
    match Command::new("ps").args(args).output() {
        Ok(out) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into_owned()),
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first = stderr.split('\n').next().unwrap_or("");
            Err(if first.is_empty() {
                match out.status.code() {
                    Some(code) => format!("exit status {code}"),
                    None => "signal: killed".to_string(),
                }
            } else {
                first.to_string()
            })
        }
        Err(e) => Err(format!("exec: \"ps\": {e}")),
    }
}

/// The processes `pids` (the container's, host PIDs) as `ps` shows them,
/// with `ps_args` (`-ef` if none or empty), as dockerd's `ContainerTop`.
pub fn top(pids: &[i32], ps_args: Option<&str>) -> Result<TopResponse, TopError> {
    let ps_args = ps_args.filter(|a| !a.is_empty()).unwrap_or("-ef");
    validate_ps_args(ps_args)?;
    let args: Vec<&str> = ps_args.split(' ').collect();
    let quick = format!(
        "-q{}",
        pids.iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut with_pids = args.clone();
    with_pids.push(&quick);
    let output = match run_ps(&with_pids) {
        Ok(out) => out,
        // Some options (a forest, `f`) do not go with `-q`: all processes.
        Err(_) => run_ps(&args).map_err(TopError::Ps)?,
    };
    parse_ps_output(&output, pids)
}

#[cfg(test)]
mod tests {
    use std::process::{Child, Command};

    use super::*;

    struct Sleeper(Child);

    impl Sleeper {
        fn start() -> Sleeper {
            Sleeper(
                Command::new("sleep")
                    .arg("300")
                    .spawn()
                    .expect("spawn sleep"),
            )
        }

        fn pid(&self) -> i32 {
            i32::try_from(self.0.id()).expect("pid")
        }
    }

    impl Drop for Sleeper {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn default_ps_ef_keeps_only_the_given_processes() {
        let a = Sleeper::start();
        let b = Sleeper::start();
        let top = top(&[a.pid()], None).expect("top");
        assert_eq!(
            top.titles,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(top.processes.len(), 1, "{:?}", top.processes);
        let row = &top.processes[0];
        assert_eq!(row.len(), 8);
        assert_eq!(row[1], a.pid().to_string());
        assert_eq!(row[2], std::process::id().to_string());
        assert_eq!(row[7], "sleep 300", "the command line is one column");
        let both = super::top(&[a.pid(), b.pid()], Some("")).expect("top");
        assert_eq!(both.processes.len(), 2);
    }

    #[test]
    fn other_arguments() {
        let a = Sleeper::start();
        let t = top(&[a.pid()], Some("-o pid,comm")).expect("top");
        assert_eq!(t.titles, ["PID", "COMMAND"]);
        assert_eq!(
            t.processes,
            [vec![a.pid().to_string(), "sleep".to_string()]]
        );
        let t = top(&[a.pid()], Some("aux")).expect("top aux");
        assert_eq!(t.titles[1], "PID");
        assert_eq!(t.processes.len(), 1);
        assert_eq!(t.processes[0][1], a.pid().to_string());
        assert_eq!(t.processes[0].len(), t.titles.len());
        // A forest cannot go with -q: ps runs again for all processes and
        // the rows are still only the container's.
        let t = top(&[a.pid()], Some("auxf")).expect("top auxf");
        assert_eq!(t.processes.len(), 1);
        assert!(
            t.processes[0]
                .last()
                .is_some_and(|c| c.contains("sleep 300"))
        );
        // Threads: the `-` rows after a kept process.
        let t = top(&[a.pid()], Some("-m -o pid,tid,comm")).expect("top threads");
        assert_eq!(t.processes.len(), 2, "{:?}", t.processes);
        assert_eq!(t.processes[1][0], "-");
    }

    #[test]
    fn errors_as_dockerd() {
        let a = Sleeper::start();
        let e = top(&[a.pid()], Some("-o comm")).expect_err("no PID column");
        assert_eq!(e.to_string(), "Couldn't find PID field in ps output");
        let e = top(&[a.pid()], Some("--bogus")).expect_err("bad option");
        assert!(matches!(e, TopError::Ps(_)));
        assert_eq!(e.to_string(), "ps: error: unknown gnu long option");
        let e = top(&[a.pid()], Some("-o pid,user=PID")).expect_err("fake PID");
        assert_eq!(e.to_string(), "specifying \"pid,user=PID\" is not allowed");
        top(&[a.pid()], Some("-o pid=PID,comm")).expect("pid=PID is allowed");
    }

    #[test]
    fn argument_check() {
        assert!(validate_ps_args("-o pid=PID").is_ok());
        assert!(validate_ps_args("-ef").is_ok());
        assert!(validate_ps_args("-o pid,comm=CMD").is_ok());
        let e = validate_ps_args("-o user=PID").expect_err("refused");
        assert_eq!(e.to_string(), "specifying \"user=PID\" is not allowed");
        let e = validate_ps_args("-o  comm=  PIDX").expect_err("refused");
        assert_eq!(e.to_string(), "specifying \"comm=PIDX\" is not allowed");
        // No white space before the key: the pattern does not match.
        assert!(validate_ps_args("user=PID").is_ok());
    }

    #[test]
    fn parsing() {
        let out = "  PID CMD\n   10 a b  c\n    -  t1\n   11 other\n    -  t2\n\n";
        let t = parse_ps_output(out, &[10]).expect("parse");
        assert_eq!(
            t.processes,
            [
                vec!["10".to_string(), "a b c".to_string()],
                vec!["-".to_string(), "t1".to_string()]
            ]
        );
        let e = parse_ps_output("PID\nx\n", &[1]).expect_err("bad pid");
        assert_eq!(
            e.to_string(),
            "Unexpected pid 'x': strconv.Atoi: parsing \"x\": invalid syntax"
        );
        // Short rows do not panic.
        let t = parse_ps_output("A B PID\n1\n", &[1]).expect("short row");
        assert!(t.processes.is_empty());
    }
}
