//! `ps`: the processes of a container.

use super::Runtime;
use crate::{Error, Result, io_err};

/// The pids of every process in the container (from its cgroup).
pub fn ps_json(rt: &Runtime, id: &str) -> Result<Vec<i32>> {
    let c = rt.load(id)?;
    match c.state.cgroup.pids() {
        Ok(pids) => Ok(pids),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(io_err("cannot read the container's processes")(e)),
    }
}

/// Runs the host's `ps` with `args` (default `-ef`) and keeps the header and
/// the lines of the container's processes.
pub fn ps_table(rt: &Runtime, id: &str, args: &[String]) -> Result<String> {
    let pids = ps_json(rt, id)?;
    let args: Vec<String> = if args.is_empty() {
        vec!["-ef".into()]
    } else {
        args.to_vec()
    };
    let output = std::process::Command::new("ps")
        .args(&args)
        .output()
        .map_err(io_err("cannot run ps"))?;
    if !output.status.success() {
        return Err(Error::Child(format!(
            "{}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    filter_ps(&String::from_utf8_lossy(&output.stdout), &pids)
}

/// Keeps the header and the lines whose PID column is one of `pids`.
fn filter_ps(text: &str, pids: &[i32]) -> Result<String> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or("");
    let column = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| Error::Child("couldn't find PID field in ps output".into()))?;
    let mut out = String::from(header);
    out.push('\n');
    for line in lines {
        let pid = line
            .split_whitespace()
            .nth(column)
            .and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            out.push_str(line);
            out.push('\n');
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_header_and_matching_lines() {
        let text = "UID PID PPID CMD\nroot 1 0 init\nroot 42 1 sleep\nroot 43 1 sh\n";
        assert_eq!(
            filter_ps(text, &[42]).unwrap(),
            "UID PID PPID CMD\nroot 42 1 sleep\n"
        );
        assert!(filter_ps("UID CMD\n", &[1]).is_err());
    }
}
